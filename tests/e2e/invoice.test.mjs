// Invoices through the real billingd: metrics go in with SendMetricsBatch
// (binary, batches of 1000), plans with SetCustomerPlan, and every expected
// amount is computed by lib/pricing.mjs (BigInt) from what the test sent.
// Periods are past months of 2026 and billingd keeps raw windows forever
// (--raw-retention-days=0), so nothing depends on today's date.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { toBinary } from "@bufbuild/protobuf";
import { collectorClients, Code, expectConnectError, invoiceClient, queryClient } from "./lib/clients.mjs";
import { batchRequest } from "./lib/batch.mjs";
import { ts, uniqueId } from "./lib/metrics.mjs";
import { InvoiceSchema } from "./lib/schema.mjs";
import { makeTempDir, removeTempDir, startServer } from "./lib/server.mjs";
import {
  BYTE_SECONDS_PER_GIB_HOUR,
  BYTES_PER_GB,
  DIM,
  KIND,
  NS_PER_HOUR,
  decimal,
  lineAmount,
  money,
  prorated,
  tiered,
} from "./lib/pricing.mjs";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const GIB = 1_073_741_824n;
const ms = (iso) => Date.parse(iso);
const nsOf = (millis) => BigInt(millis) * 1_000_000n;
const tsMs = (t) => Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);
const PLAN_START = ts(ms("2026-01-01T00:00:00Z"));

let server;
let ingest;
let invoices;
let invoicesJson;

before(async () => {
  server = await startServer({ args: ["--raw-retention-days=0"] });
  ingest = collectorClients(server.baseUrl).binary;
  invoices = invoiceClient(server.baseUrl, { binary: true });
  invoicesJson = invoiceClient(server.baseUrl, { binary: false });
});

after(async () => {
  await server?.cleanup();
});

// Windows of one VM covering [fromMs, toMs) in `stepMs` steps; `values(i)`
// gives each window's counters.
function windows({ customerId, vmId, region, fromMs, toMs, stepMs = MINUTE, values }) {
  const out = [];
  for (let start = fromMs, i = 0; start < toMs; start += stepMs, i++) {
    out.push({ customerId, vmId, region, windowStart: ts(start), windowEnd: ts(start + stepMs), ...values(i) });
  }
  return out;
}

// Sends `metrics` of one region in batches of 1000; returns summed counts.
async function send(metrics, region) {
  const counts = { accepted: 0, duplicate: 0, rejected: 0 };
  for (let i = 0; i < metrics.length; i += 1000) {
    const response = await ingest.sendMetricsBatch(batchRequest(metrics.slice(i, i + 1000), { region }));
    counts.accepted += response.acceptedCount;
    counts.duplicate += response.duplicateCount;
    counts.rejected += response.rejectedCount;
  }
  return counts;
}

const sum = (metrics, field) => metrics.reduce((total, m) => total + BigInt(m[field] ?? 0n), 0n);

// The fields of a line the tests compare.
function lineView(line) {
  const view = { kind: line.kind, amount: line.amount };
  if (line.kind === KIND.usage) {
    Object.assign(view, { dimension: line.dimension, region: line.region, tier: line.tier, quantityBaseUnits: line.quantityBaseUnits });
  }
  if (line.kind === KIND.base_fee) view.quantityBaseUnits = line.quantityBaseUnits;
  if (line.kind === KIND.adjustment) view.adjustedPeriodStart = tsMs(line.adjustedPeriodStart);
  return view;
}

const usageLine = (dimension, region, tier, quantity, amount) => ({
  kind: KIND.usage,
  amount: money(amount),
  dimension,
  region,
  tier,
  quantityBaseUnits: quantity.toString(),
});
const feeLine = (activeNs, amount) => ({ kind: KIND.base_fee, amount: money(amount), quantityBaseUnits: activeNs.toString() });
const totalOf = (lines) => money(lines.reduce((total, line) => total + decimal(line.amount, 9), 0n));

async function setPlan(customerId, version) {
  return invoices.setCustomerPlan({ customerId, version: { effectiveFrom: PLAN_START, ...version } });
}

async function getInvoice(customerId, periodIso) {
  const response = await invoices.getInvoice({ customerId, periodStart: ts(ms(periodIso)) });
  return response.invoice;
}

test("the seed's example: VM1 and VM2 in region A all month, VM3 in region B from day 13", async () => {
  const customerId = uniqueId("seed");
  const sept = ms("2026-09-01T00:00:00Z");
  const oct = ms("2026-10-01T00:00:00Z");
  await setPlan(customerId, {
    prices: [
      { dimension: DIM.cpu, tiers: [{ price: "0.0425" }] },
      { dimension: DIM.memory, tiers: [{ price: "0.005" }] },
      { dimension: DIM.network_tx, tiers: [{ upTo: "500", price: "0.09" }, { price: "0.05" }] },
      { dimension: DIM.vm_time, tiers: [{ price: "0.01" }] },
    ],
    regionMultipliers: { "region-b": "1.1" },
    monthlyBaseFee: "25",
    monthlyMinimum: "10",
  });
  const values = (i) => ({
    cpuTimeNanos: 30_000_000_000n + BigInt(i % 1000),
    memoryBytesUsed: 2n * GIB,
    memoryBytesPeak: 2n * GIB,
    memoryBytesSeconds: 2n * GIB * 60n - BigInt(i % 7),
    networkTxBytes: 10_000_000n + BigInt(i % 13),
  });
  const regionA = [
    ...windows({ customerId, vmId: "vm-1", region: "region-a", fromMs: sept, toMs: oct, values }),
    ...windows({ customerId, vmId: "vm-2", region: "region-a", fromMs: sept, toMs: oct, values }),
  ];
  const regionB = windows({ customerId, vmId: "vm-3", region: "region-b", fromMs: sept + 12 * DAY, toMs: oct, values });
  assert.equal(regionA.length + regionB.length, 112_320);
  assert.deepEqual(await send(regionA, "region-a"), { accepted: 86_400, duplicate: 0, rejected: 0 });
  assert.deepEqual(await send(regionB, "region-b"), { accepted: 25_920, duplicate: 0, rejected: 0 });

  const invoice = await getInvoice(customerId, "2026-09-01T00:00:00Z");
  assert.equal(invoice.finalized, false);
  assert.equal(invoice.totalVmHours, "1872");
  assert.deepEqual(
    invoice.vms.map((vm) => ({ vm: vm.vmId, region: vm.region, hours: vm.hours, start: tsMs(vm.startTime), stop: tsMs(vm.stopTime) })),
    [
      { vm: "vm-1", region: "region-a", hours: "720", start: sept, stop: oct },
      { vm: "vm-2", region: "region-a", hours: "720", start: sept, stop: oct },
      { vm: "vm-3", region: "region-b", hours: "432", start: sept + 12 * DAY, stop: oct },
    ],
  );

  // Lines: by dimension, then region; region B at ×1.1; network tiers over
  // the month's cumulative egress, region A first.
  const expected = [];
  const hours = { "region-a": 1440n * NS_PER_HOUR, "region-b": 432n * NS_PER_HOUR };
  const multiplier = { "region-a": "1", "region-b": "1.1" };
  const byRegion = { "region-a": regionA, "region-b": regionB };
  for (const region of ["region-a", "region-b"]) {
    const q = sum(byRegion[region], "cpuTimeNanos");
    expected.push(usageLine(DIM.cpu, region, 1, q, lineAmount(q, "0.0425", NS_PER_HOUR, multiplier[region])));
  }
  for (const region of ["region-a", "region-b"]) {
    const q = sum(byRegion[region], "memoryBytesSeconds");
    expected.push(usageLine(DIM.memory, region, 1, q, lineAmount(q, "0.005", BYTE_SECONDS_PER_GIB_HOUR, multiplier[region])));
  }
  const tiers = [
    { upTo: 500n * BYTES_PER_GB, rate: "0.09" },
    { upTo: 0n, rate: "0.05" },
  ];
  let egress = 0n;
  for (const region of ["region-a", "region-b"]) {
    const q = sum(byRegion[region], "networkTxBytes");
    for (const part of tiered(q, tiers, egress)) {
      expected.push(usageLine(DIM.network_tx, region, part.tier, part.quantity, lineAmount(part.quantity, part.rate, BYTES_PER_GB, multiplier[region])));
    }
    egress += q;
  }
  for (const region of ["region-a", "region-b"]) {
    expected.push(usageLine(DIM.vm_time, region, 1, hours[region], lineAmount(hours[region], "0.01", NS_PER_HOUR, multiplier[region])));
  }
  // Active from the first instant of the month: the whole base fee; the
  // minimum (10) is below the usage, so no minimum line.
  expected.push(feeLine(nsOf(oct - sept), prorated("25", nsOf(oct - sept), nsOf(oct - sept))));
  assert.deepEqual(invoice.lines.map(lineView), expected);
  assert.equal(invoice.total, totalOf(expected));
  assert.equal(invoice.subtotal, invoice.total);
  // 720 + 720 + 432 VM-hours at 0.01, region B ×1.1: 14.4 + 4.752.
  assert.equal(expected.at(-3).amount, "14.4");
  assert.equal(expected.at(-2).amount, "4.752");
});

test("a rate change at 09:20 splits that hour exactly by its raw windows", async () => {
  const customerId = uniqueId("ratechange");
  const change = ms("2026-10-14T09:20:00Z");
  const oct = ms("2026-10-01T00:00:00Z");
  const nov = ms("2026-11-01T00:00:00Z");
  await setPlan(customerId, { prices: [{ dimension: DIM.cpu, tiers: [{ price: "0.06" }] }], monthlyBaseFee: "30" });
  await invoices.setCustomerPlan({
    customerId,
    version: { effectiveFrom: ts(change), prices: [{ dimension: DIM.cpu, tiers: [{ price: "0.12" }] }], monthlyBaseFee: "60" },
  });
  const from = ms("2026-10-14T08:00:00Z");
  const cpu = (i) => ({ cpuTimeNanos: 1_000_000_000n * BigInt(1 + (i % 7)) + BigInt(i) });
  const sent = [
    ...windows({ customerId, vmId: "vm-1", region: "a", fromMs: from, toMs: change - MINUTE, values: cpu }),
    // One two-minute window across the change, half on each side.
    { customerId, vmId: "vm-1", region: "a", windowStart: ts(change - MINUTE), windowEnd: ts(change + MINUTE), cpuTimeNanos: 100_000_000_000n },
    ...windows({ customerId, vmId: "vm-1", region: "a", fromMs: change + MINUTE, toMs: from + 3 * HOUR, values: cpu }),
  ];
  assert.equal((await send(sent, "a")).accepted, sent.length);

  const before = sum(sent.filter((m) => tsMs(m.windowEnd) <= change), "cpuTimeNanos") + 50_000_000_000n;
  const afterChange = sum(sent.filter((m) => tsMs(m.windowStart) >= change), "cpuTimeNanos") + 50_000_000_000n;
  const period = nsOf(nov - oct);
  const expected = [
    usageLine(DIM.cpu, "a", 1, before, lineAmount(before, "0.06", NS_PER_HOUR)),
    usageLine(DIM.cpu, "a", 1, afterChange, lineAmount(afterChange, "0.12", NS_PER_HOUR)),
    feeLine(nsOf(change - from), prorated("30", nsOf(change - from), period)),
    feeLine(nsOf(nov - change), prorated("60", nsOf(nov - change), period)),
  ];
  const invoice = await getInvoice(customerId, "2026-10-01T00:00:00Z");
  assert.deepEqual(invoice.lines.map(lineView), expected);
  assert.equal(tsMs(invoice.lines[1].versionEffectiveFrom), change);
  assert.equal(invoice.total, totalOf(expected));
  assert.equal(tsMs(invoice.activeFrom), from);

  // GetBillingWindow carries the cost of its range: the same usage lines, no fees.
  const window = await queryClient(server.baseUrl).getBillingWindow({ customerId, startTime: ts(from), endTime: ts(from + 3 * HOUR) });
  assert.equal(window.cost, money(lineAmount(before, "0.06", NS_PER_HOUR) + lineAmount(afterChange, "0.12", NS_PER_HOUR)));
  const noPlan = await queryClient(server.baseUrl).getBillingWindow({ customerId: uniqueId("noplan"), startTime: ts(from), endTime: ts(from + HOUR) });
  assert.equal(noPlan.cost, "");
});

test("a VM that starts and stops several times, sent out of order with duplicates", async () => {
  const customerId = uniqueId("startstop");
  const aug = ms("2026-08-01T00:00:00Z");
  const sept = ms("2026-09-01T00:00:00Z");
  await setPlan(customerId, {
    prices: [
      { dimension: DIM.vm_time, tiers: [{ price: "0.1" }] },
      { dimension: DIM.cpu, tiers: [{ price: "0.05" }] },
    ],
    monthlyBaseFee: "31",
  });
  const spans = [
    [ms("2026-08-03T10:00:00Z"), ms("2026-08-03T12:30:00Z")],
    [ms("2026-08-10T00:00:00Z"), ms("2026-08-10T00:45:00Z")],
    [ms("2026-08-20T23:30:00Z"), ms("2026-08-21T01:00:00Z")],
  ];
  const sent = spans.flatMap(([fromMs, toMs]) =>
    windows({ customerId, vmId: "vm-9", region: "a", fromMs, toMs, values: (i) => ({ cpuTimeNanos: 7_000_000_000n + BigInt(i) }) }),
  );
  const shuffled = [...sent].reverse();
  assert.equal((await send(shuffled, "a")).accepted, sent.length);
  const again = sent.filter((_, i) => i % 3 === 0);
  assert.deepEqual(await send(again, "a"), { accepted: 0, duplicate: again.length, rejected: 0 });
  // A conflicting re-send is refused and changes nothing.
  const conflict = await send([{ ...sent[5], cpuTimeNanos: 1n }], "a");
  assert.equal(conflict.rejected, 1);

  const active = (150n + 45n + 90n) * 60_000_000_000n; // 4.75 h
  const cpu = sum(sent, "cpuTimeNanos");
  const expected = [
    usageLine(DIM.cpu, "a", 1, cpu, lineAmount(cpu, "0.05", NS_PER_HOUR)),
    usageLine(DIM.vm_time, "a", 1, active, lineAmount(active, "0.1", NS_PER_HOUR)),
    feeLine(nsOf(sept - spans[0][0]), prorated("31", nsOf(sept - spans[0][0]), nsOf(sept - aug))),
  ];
  const invoice = await getInvoice(customerId, "2026-08-01T00:00:00Z");
  assert.deepEqual(invoice.lines.map(lineView), expected);
  assert.equal(expected[1].amount, "0.475");
  assert.equal(invoice.totalVmHours, "4.75");
  assert.deepEqual(
    invoice.vms.map((vm) => ({ hours: vm.hours, active: vm.activeNanos, start: tsMs(vm.startTime), stop: tsMs(vm.stopTime) })),
    [{ hours: "4.75", active, start: spans[0][0], stop: spans[2][1] }],
  );
  assert.equal(invoice.total, totalOf(expected));
});

test("late data after finalization: the finalized invoice stays bit-identical, the next one adjusts", async () => {
  const customerId = uniqueId("late");
  const july = ms("2026-07-01T00:00:00Z");
  const aug = ms("2026-08-01T00:00:00Z");
  await setPlan(customerId, { prices: [{ dimension: DIM.cpu, tiers: [{ price: "0.04" }] }] });
  const cpu = () => ({ cpuTimeNanos: 45_000_000_000n + 333n });
  const first = windows({ customerId, vmId: "vm-1", region: "a", fromMs: ms("2026-07-10T00:00:00Z"), toMs: ms("2026-07-10T02:00:00Z"), values: cpu });
  assert.equal((await send(first, "a")).accepted, first.length);

  const finalized = await invoices.finalizeInvoices({ periodStart: ts(july), customerIds: [customerId] });
  assert.equal(finalized.invoices.length, 1);
  const july1 = finalized.invoices[0];
  assert.equal(july1.finalized, true);
  assert.ok(july1.number >= 1n);
  assert.match(july1.contentHash, /^[0-9a-f]{64}$/);
  const q1 = sum(first, "cpuTimeNanos");
  assert.equal(july1.total, money(lineAmount(q1, "0.04", NS_PER_HOUR)));
  const storedBytes = toBinary(InvoiceSchema, await getInvoice(customerId, "2026-07-01T00:00:00Z"));
  assert.deepEqual(storedBytes, toBinary(InvoiceSchema, july1));

  // Finalized periods are closed to re-pricing; open periods cannot be finalized.
  await expectConnectError(
    invoices.setCustomerPlan({ customerId, version: { effectiveFrom: ts(ms("2026-07-15T00:00:00Z")), prices: [] } }),
    Code.FailedPrecondition,
  );
  await expectConnectError(invoices.finalizeInvoices({ periodStart: ts(ms("2099-01-01T00:00:00Z")), customerIds: [customerId] }), Code.FailedPrecondition);

  // Late windows for July.
  const late = windows({ customerId, vmId: "vm-1", region: "a", fromMs: ms("2026-07-20T00:00:00Z"), toMs: ms("2026-07-20T00:30:00Z"), values: cpu });
  assert.equal((await send(late, "a")).accepted, late.length);

  const july2 = await getInvoice(customerId, "2026-07-01T00:00:00Z");
  assert.deepEqual(toBinary(InvoiceSchema, july2), storedBytes);
  assert.equal(july2.contentHash, july1.contentHash);

  const q2 = q1 + sum(late, "cpuTimeNanos");
  const delta = lineAmount(q2, "0.04", NS_PER_HOUR) - lineAmount(q1, "0.04", NS_PER_HOUR);
  const augDraft = await getInvoice(customerId, "2026-08-01T00:00:00Z");
  assert.deepEqual(augDraft.lines.map(lineView), [{ kind: KIND.adjustment, amount: money(delta), adjustedPeriodStart: july }]);
  assert.equal(augDraft.total, money(delta));
  assert.equal(augDraft.adjustments, money(delta));

  // Finalizing August stores the adjustment once; asking again changes nothing.
  const augFinal = (await invoices.finalizeInvoices({ periodStart: ts(aug), customerIds: [customerId] })).invoices[0];
  assert.equal(augFinal.total, money(delta));
  assert.ok(augFinal.number > july1.number);
  const again = (await invoicesJson.finalizeInvoices({ periodStart: ts(aug), customerIds: [customerId] })).invoices[0];
  assert.equal(again.contentHash, augFinal.contentHash);
  const september = await getInvoice(customerId, "2026-09-01T00:00:00Z");
  assert.deepEqual(september.lines, []);
  const listed = await invoices.listInvoices({ customerId });
  assert.deepEqual(
    listed.invoices.map((i) => [tsMs(i.periodStart), i.contentHash]),
    [
      [july, july1.contentHash],
      [aug, augFinal.contentHash],
    ],
  );
  // Finalizing July again answers the stored invoice, unchanged.
  const julyAgain = await invoices.finalizeInvoices({ periodStart: ts(july), customerIds: [customerId] });
  assert.equal(julyAgain.invoices[0].contentHash, july1.contentHash);
});

test("the seed's PricingRates are accepted as their shortest decimals; bad plans are refused", async () => {
  const customerId = uniqueId("rates");
  const response = await invoicesJson.setCustomerPlan({
    customerId,
    version: { effectiveFrom: PLAN_START, rates: { cpuPerCoreHour: 0.0425, memoryPerGbHour: 0.005, diskIoPerGb: 0.1, networkPerGb: 0.09 } },
  });
  const prices = Object.fromEntries(response.versions[0].prices.map((p) => [p.dimension, p.tiers.map((t) => t.price)]));
  assert.deepEqual(prices, {
    [DIM.cpu]: ["0.0425"],
    [DIM.memory]: ["0.005"],
    [DIM.disk_read]: ["0.1"],
    [DIM.disk_write]: ["0.1"],
    [DIM.network_rx]: ["0.09"],
    [DIM.network_tx]: ["0.09"],
  });
  const plan = await invoices.getCustomerPlan({ customerId });
  assert.equal(plan.versions.length, 1);

  const bad = [
    { effectiveFrom: PLAN_START, rates: { cpuPerCoreHour: -1 } },
    { effectiveFrom: PLAN_START, prices: [{ dimension: DIM.cpu, tiers: [{ price: "0.1234567890123" }] }] },
    { effectiveFrom: PLAN_START, prices: [{ dimension: DIM.cpu, tiers: [{ upTo: "5", price: "1" }, { upTo: "2", price: "1" }, { price: "1" }] }] },
    { effectiveFrom: PLAN_START, prices: [{ dimension: 0, tiers: [{ price: "1" }] }] },
    { effectiveFrom: PLAN_START, monthlyBaseFee: "1e3" },
    { prices: [] },
  ];
  for (const version of bad) {
    await expectConnectError(invoices.setCustomerPlan({ customerId, version }), Code.InvalidArgument);
  }
  await expectConnectError(invoices.getInvoice({ customerId, periodStart: ts(ms("2026-07-02T00:00:00Z")) }), Code.InvalidArgument);
  await expectConnectError(invoices.getInvoice({ customerId: "", periodStart: ts(ms("2026-07-01T00:00:00Z")) }), Code.InvalidArgument);
  // A customer without a plan and no default plan: nothing to price with.
  await expectConnectError(invoices.getInvoice({ customerId: uniqueId("noplan"), periodStart: ts(ms("2026-07-01T00:00:00Z")) }), Code.FailedPrecondition);
});

test("--plans-file applies plan versions at start; the same file again is a no-op; a bad one stops billingd", async () => {
  const dir = makeTempDir();
  const file = path.join(dir, "plans.json");
  writeFileSync(
    file,
    JSON.stringify({
      plans: [
        { customerId: "", version: { effectiveFrom: "2026-01-01T00:00:00Z", prices: [{ dimension: "DIMENSION_CPU", tiers: [{ price: "0.05" }] }] } },
        { customerId: "filed", version: { effectiveFrom: "2026-03-01T00:00:00Z", rates: { cpuPerCoreHour: 0.0425 }, monthlyBaseFee: "12.5" } },
      ],
    }),
  );
  const dataDir = path.join(dir, "db");
  for (let start = 0; start < 2; start++) {
    const filed = await startServer({ dataDir, args: [`--plans-file=${file}`] });
    try {
      const client = invoiceClient(filed.baseUrl);
      const plan = await client.getCustomerPlan({ customerId: "filed" });
      assert.deepEqual(
        plan.versions.map((v) => [tsMs(v.effectiveFrom), v.prices.map((p) => p.tiers[0].price), v.monthlyBaseFee]),
        [
          [ms("2026-01-01T00:00:00Z"), ["0.05"], "0"],
          // The seed's rates set every dimension they name; 0 is free.
          [ms("2026-03-01T00:00:00Z"), ["0.0425", "0", "0", "0", "0", "0"], "12.5"],
        ],
      );
    } finally {
      await filed.stop();
    }
  }
  writeFileSync(file, JSON.stringify({ plans: [{ customerId: "filed", version: { effectiveFrom: "2026-03-01T00:00:00Z", monthlyBaseFee: "1e3" } }] }));
  await assert.rejects(startServer({ dataDir, args: [`--plans-file=${file}`] }), /exited before listening/);
  removeTempDir(dir);
});
