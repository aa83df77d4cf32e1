// Usage totals past 2^64 from the real billingd (issue 13): a month of one
// 24 TiB VM (memory_bytes_seconds ~6.8e19) and a customer running 10^6 cores
// for a month (cpu_time_nanos ~2.6e21) are exact through GetCustomerUsage,
// GetBillingWindow, StreamLiveUsage and an invoice. The uint64 fields saturate
// at 2^64-1; the *_decimal twins carry the exact value. Every expected figure
// is summed here, in BigInt, from what the test sent.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { batchRequest, summarize } from "./lib/batch.mjs";
import { collectorClients, invoiceClient, queryClient } from "./lib/clients.mjs";
import { ts, uniqueId } from "./lib/metrics.mjs";
import { BYTE_SECONDS_PER_GIB_HOUR, DIM, lineAmount, money, NS_PER_HOUR } from "./lib/pricing.mjs";
import { startServer } from "./lib/server.mjs";
import { next } from "./lib/stream.mjs";

const servers = [];
after(async () => {
  for (const s of servers) await s.cleanup();
});

const U64_MAX = (1n << 64n) - 1n;
const HOUR_MS = 3_600_000;
const TIB = 1n << 40n;
const VM_MEMORY = 24n * TIB;
const CORES_PER_VM = 100_000n; // 10 VMs: a million cores
const CORE_VMS = 10;

const now = new Date();
const THIS_MONTH_MS = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
const LAST_MONTH_MS = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1);

// An hour-long window with exact counters; nothing random, so sums are known.
function hourWindow({ customerId, vmId, startMs, cpuTimeNanos = 0n, memoryBytes = 0n, lengthMs = HOUR_MS }) {
  const seconds = BigInt(lengthMs / 1000);
  return {
    customerId,
    vmId,
    region: "us-east-1",
    timestamp: ts(startMs + lengthMs - 1000),
    windowStart: ts(startMs),
    windowEnd: ts(startMs + lengthMs),
    cpuTimeNanos,
    memoryBytesUsed: memoryBytes,
    memoryBytesPeak: memoryBytes,
    memoryBytesSeconds: memoryBytes * seconds,
    networkTxBytes: 1_000_000n,
  };
}

async function ingestAll(collector, windows) {
  for (let i = 0; i < windows.length; i += 1000) {
    const chunk = windows.slice(i, i + 1000);
    const response = await collector.sendMetricsBatch(batchRequest(chunk));
    assert.deepEqual(summarize(response).results, [], "every window accepted");
    assert.equal(response.acceptedCount, chunk.length);
  }
}

function sumOf(windows, field) {
  return windows.reduce((sum, w) => sum + BigInt(w[field]), 0n);
}

// Both views of one total: the uint64 field (saturated) and its decimal twin.
function assertTotal(totals, field, expected, where) {
  assert.equal(totals[`${field}Decimal`], expected.toString(), `${where}: ${field}Decimal`);
  assert.equal(BigInt(totals[field]), expected > U64_MAX ? U64_MAX : expected, `${where}: ${field} (uint64)`);
}

test("a month of a 24 TiB VM and of a million cores is exact past 2^64 everywhere", async () => {
  const server = await startServer({ args: [`--max-vcpus=${CORES_PER_VM}`, "--max-window-query-days=31"] });
  servers.push(server);
  const { binary: collector } = collectorClients(server.baseUrl);
  const query = queryClient(server.baseUrl);
  const invoices = invoiceClient(server.baseUrl);
  const customerId = uniqueId("big");
  await invoices.setCustomerPlan({
    customerId,
    version: {
      effectiveFrom: ts(LAST_MONTH_MS),
      prices: [
        { dimension: DIM.cpu, tiers: [{ price: "0.0425" }] },
        { dimension: DIM.memory, tiers: [{ price: "0.0031" }] },
      ],
    },
  });

  const windows = [];
  for (let start = LAST_MONTH_MS; start < THIS_MONTH_MS; start += HOUR_MS) {
    windows.push(hourWindow({ customerId, vmId: "vm-24tib", startMs: start, memoryBytes: VM_MEMORY }));
    for (let v = 0; v < CORE_VMS; v += 1) {
      windows.push(hourWindow({ customerId, vmId: `vm-cores-${v}`, startMs: start, cpuTimeNanos: CORES_PER_VM * NS_PER_HOUR }));
    }
  }
  await ingestAll(collector, windows);

  const cpu = sumOf(windows, "cpuTimeNanos");
  const memory = sumOf(windows, "memoryBytesSeconds");
  const activeNs = BigInt(windows.length) * NS_PER_HOUR;
  assert.ok(cpu > U64_MAX && memory > U64_MAX, "the workload passes 2^64 in both dimensions");

  const usage = await query.getCustomerUsage({
    customerId,
    startTime: ts(LAST_MONTH_MS),
    endTime: ts(THIS_MONTH_MS),
    granularity: 3,
  });
  for (const [where, totals] of [["usage totals", usage.totals], ["monthly bucket", usage.buckets[0].totals]]) {
    assertTotal(totals, "cpuTimeNanos", cpu, where);
    assertTotal(totals, "memoryBytesSeconds", memory, where);
    assertTotal(totals, "vmActiveNanos", activeNs, where);
    assertTotal(totals, "windowCount", BigInt(windows.length), where);
  }
  const bigVm = usage.vms.find((v) => v.vmId === "vm-24tib");
  assertTotal(bigVm.totals, "memoryBytesSeconds", memory, "the 24 TiB VM");
  assertTotal(usage.regions[0].totals, "cpuTimeNanos", cpu, "the region");

  const window = await query.getBillingWindow({ customerId, startTime: ts(LAST_MONTH_MS), endTime: ts(THIS_MONTH_MS) });
  assertTotal(window.totals, "cpuTimeNanos", cpu, "billing window");
  assertTotal(window.totals, "memoryBytesSeconds", memory, "billing window");

  // The invoice, priced here: CPU per core-hour, memory per GiB-hour.
  const cpuAmount = lineAmount(cpu, "0.0425", NS_PER_HOUR);
  const memoryAmount = lineAmount(memory, "0.0031", BYTE_SECONDS_PER_GIB_HOUR);
  const { invoice } = await invoices.getInvoice({ customerId, periodStart: ts(LAST_MONTH_MS) });
  const line = (dimension) => invoice.lines.find((l) => l.dimension === dimension);
  assert.equal(line(DIM.cpu).quantityBaseUnits, cpu.toString());
  assert.equal(line(DIM.memory).quantityBaseUnits, memory.toString());
  assert.equal(line(DIM.cpu).amount, money(cpuAmount));
  assert.equal(line(DIM.memory).amount, money(memoryAmount));
  assert.equal(invoice.usageSubtotal, money(cpuAmount + memoryAmount));
});

test("the live stream's month-to-date totals pass 2^64 exactly", async (t) => {
  const server = await startServer();
  servers.push(server);
  const { binary: collector } = collectorClients(server.baseUrl);
  const customerId = uniqueId("big-live");
  // Whole hours of this month so far (1-minute windows in its first hour),
  // with enough 24 TiB VMs that the month passes 2^64 byte-seconds.
  const elapsedMs = Date.now() - THIS_MONTH_MS;
  const lengthMs = elapsedMs >= 2 * HOUR_MS ? HOUR_MS : 60_000;
  const count = Math.floor(elapsedMs / lengthMs) - 1;
  if (count < 1) {
    t.skip("the month began less than two minutes ago: no whole window of it is in the past");
    return;
  }
  const perVm = VM_MEMORY * BigInt(lengthMs / 1000) * BigInt(count);
  const vms = Number((2n * U64_MAX) / perVm + 1n);
  const windows = [];
  for (let v = 0; v < vms; v += 1) {
    for (let i = 0; i < count; i += 1) {
      windows.push(hourWindow({ customerId, vmId: `vm-${v}`, startMs: THIS_MONTH_MS + i * lengthMs, memoryBytes: VM_MEMORY, lengthMs }));
    }
  }
  const half = Math.floor(windows.length / 2);

  const abort = new AbortController();
  const stream = queryClient(server.baseUrl).streamLiveUsage({ customerId }, { signal: abort.signal })[Symbol.asyncIterator]();
  try {
    assert.equal((await next(stream, "the snapshot")).snapshot, true);
    await ingestAll(collector, windows.slice(0, half));
    await ingestAll(collector, windows.slice(half));
    const expected = sumOf(windows, "memoryBytesSeconds");
    assert.ok(expected > U64_MAX);
    let last;
    while (!last || last.monthToDate.memoryBytesSecondsDecimal !== expected.toString()) {
      last = await next(stream, "an update");
      assert.ok(BigInt(last.monthToDate.memoryBytesSecondsDecimal) <= expected, "never more than was sent");
    }
    assertTotal(last.monthToDate, "memoryBytesSeconds", expected, "month to date");
    assertTotal(last.monthToDate, "windowCount", BigInt(windows.length), "month to date");
  } finally {
    abort.abort();
  }
});
