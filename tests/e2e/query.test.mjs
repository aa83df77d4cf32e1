// Usage queries through stock Connect clients (JSON and binary) against the
// real billingd: a multi-region workload is ingested, then every granularity
// of GetCustomerUsage and GetBillingWindow is compared with totals this test
// computes itself from what it sent.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { collectorClients, Code, expectConnectError, queryClient } from "./lib/clients.mjs";
import { batchRequest } from "./lib/batch.mjs";
import { makeMetric, MINUTE_MS, ts, uniqueId } from "./lib/metrics.mjs";
import { startServer } from "./lib/server.mjs";

const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const GRANULARITY = { hour: 1, day: 2, month: 3 };
// Summed counters: [UsageTotals field, BillingMetrics field].
const SUMMED = [
  ["cpuTimeNanos", "cpuTimeNanos"],
  ["memoryBytesSeconds", "memoryBytesSeconds"],
  ["diskReadBytes", "diskReadBytes"],
  ["diskWriteBytes", "diskWriteBytes"],
  ["diskReadOps", "diskReadOps"],
  ["diskWriteOps", "diskWriteOps"],
  ["networkRxBytes", "networkRxBytes"],
  ["networkTxBytes", "networkTxBytes"],
];

let server;
let ingest;
let json;
let binary;

before(async () => {
  server = await startServer();
  ingest = collectorClients(server.baseUrl).binary;
  json = queryClient(server.baseUrl, { binary: false });
  binary = queryClient(server.baseUrl, { binary: true });
});

after(async () => {
  await server?.cleanup();
});

const tsMs = (t) => Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);
const startOfHour = (ms) => Math.floor(ms / HOUR_MS) * HOUR_MS;
const startOfDay = (ms) => Math.floor(ms / DAY_MS) * DAY_MS;
function startOfMonth(ms) {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}
function nextMonth(ms) {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

// Independent totals of whole windows: sums, the peak, active time, count.
function totalsOf(metrics) {
  const t = { memoryBytesPeak: 0n, vmActiveNanos: 0n, windowCount: 0n };
  for (const [field] of SUMMED) t[field] = 0n;
  for (const m of metrics) {
    for (const [field, source] of SUMMED) t[field] += m[source];
    const peak = m.memoryBytesPeak > m.memoryBytesUsed ? m.memoryBytesPeak : m.memoryBytesUsed;
    if (peak > t.memoryBytesPeak) t.memoryBytesPeak = peak;
    t.vmActiveNanos += BigInt(tsMs(m.windowEnd) - tsMs(m.windowStart)) * 1_000_000n;
    t.windowCount += 1n;
  }
  return t;
}

function assertTotals(actual, expected, what) {
  for (const field of Object.keys(expected)) {
    assert.equal(actual[field], expected[field], `${what}: ${field}`);
  }
}

async function send(metrics, region) {
  const response = await ingest.sendMetricsBatch(batchRequest(metrics, { region }));
  assert.equal(response.acceptedCount, metrics.length, JSON.stringify(response.results));
}

// A customer with two VMs in eu-west-1 and one in us-east-1 over the last
// three hours, every window inside one hour (so each hour's expected totals
// are plain sums), plus vm-gap that skips minutes 5..7.
const customer = uniqueId("cust-query");
const firstHourMs = startOfHour(Date.now()) - 3 * HOUR_MS;
const workload = [];
function windowAt(vmId, region, startMs) {
  return makeMetric({ customerId: customer, vmId, region, windowStartMs: startMs, windowEndMs: startMs + MINUTE_MS });
}
for (let minute = 0; minute < 150; minute += 5) {
  workload.push(windowAt("vm-1", "eu-west-1", firstHourMs + minute * MINUTE_MS));
  workload.push(windowAt("vm-2", "eu-west-1", firstHourMs + (minute + 1) * MINUTE_MS));
  workload.push(windowAt("vm-3", "us-east-1", firstHourMs + (minute + 2) * MINUTE_MS));
}

test("ingest the multi-region workload", async () => {
  for (const region of ["eu-west-1", "us-east-1"]) {
    await send(workload.filter((m) => m.region === region), region);
  }
});

test("GetCustomerUsage by hour: totals, every bucket, regions and VMs match what was sent", async () => {
  const startMs = firstHourMs;
  const endMs = firstHourMs + 4 * HOUR_MS;
  for (const client of [json, binary]) {
    const usage = await client.getCustomerUsage({ customerId: customer, startTime: ts(startMs), endTime: ts(endMs), granularity: GRANULARITY.hour });
    assert.equal(usage.customerId, customer);
    assertTotals(usage.totals, totalsOf(workload), "totals");
    assert.equal(usage.buckets.length, 4);
    for (const [i, bucket] of usage.buckets.entries()) {
      const from = startMs + i * HOUR_MS;
      assert.equal(tsMs(bucket.bucketStart), from);
      assert.equal(tsMs(bucket.bucketEnd), from + HOUR_MS);
      const inBucket = workload.filter((m) => tsMs(m.windowStart) >= from && tsMs(m.windowStart) < from + HOUR_MS);
      assertTotals(bucket.totals, totalsOf(inBucket), `hour ${i}`);
    }
    assert.deepEqual(usage.regions.map((r) => r.region), ["eu-west-1", "us-east-1"]);
    for (const region of usage.regions) {
      assertTotals(region.totals, totalsOf(workload.filter((m) => m.region === region.region)), region.region);
    }
    assert.deepEqual(usage.vms.map((v) => v.vmId), ["vm-1", "vm-2", "vm-3"]);
    for (const vm of usage.vms) {
      const own = workload.filter((m) => m.vmId === vm.vmId);
      assertTotals(vm.totals, totalsOf(own), vm.vmId);
      assert.equal(tsMs(vm.firstSeen), Math.min(...own.map((m) => tsMs(m.windowStart))));
      assert.equal(tsMs(vm.lastSeen), Math.max(...own.map((m) => tsMs(m.windowEnd))));
    }
  }
});

test("GetCustomerUsage by day and by month consolidates the same usage", async () => {
  const first = tsMs(workload[0].windowStart);
  const last = Math.max(...workload.map((m) => tsMs(m.windowEnd)));
  const ranges = [
    [GRANULARITY.day, startOfDay(first), startOfDay(last) + DAY_MS],
    [GRANULARITY.month, startOfMonth(first), nextMonth(last)],
  ];
  for (const [granularity, startMs, endMs] of ranges) {
    const usage = await binary.getCustomerUsage({ customerId: customer, startTime: ts(startMs), endTime: ts(endMs), granularity });
    assertTotals(usage.totals, totalsOf(workload), `granularity ${granularity}`);
    const bucketSum = usage.buckets.reduce((sum, b) => sum + b.totals.cpuTimeNanos, 0n);
    assert.equal(bucketSum, totalsOf(workload).cpuTimeNanos);
  }
});

test("a window straddling an hour is split exactly: its parts sum to the whole", async () => {
  const straddling = makeMetric({ customerId: customer, vmId: "vm-straddle", region: "eu-west-1", windowStartMs: firstHourMs + HOUR_MS - 20_000, windowEndMs: firstHourMs + HOUR_MS + 40_000 });
  await send([straddling], "eu-west-1");
  const usage = await json.getCustomerUsage({ customerId: customer, startTime: ts(firstHourMs), endTime: ts(firstHourMs + 2 * HOUR_MS), granularity: GRANULARITY.hour });
  const vm = usage.vms.find((v) => v.vmId === "vm-straddle");
  assertTotals(vm.totals, totalsOf([straddling]), "straddling window");
  const [hour0, hour1] = usage.buckets;
  const others = (h) => totalsOf(workload.filter((m) => tsMs(m.windowStart) >= firstHourMs + h * HOUR_MS && tsMs(m.windowStart) < firstHourMs + (h + 1) * HOUR_MS));
  // Active time splits 20 s / 40 s; every counter's two parts add up exactly.
  assert.equal(hour0.totals.vmActiveNanos - others(0).vmActiveNanos, 20_000_000_000n);
  assert.equal(hour1.totals.vmActiveNanos - others(1).vmActiveNanos, 40_000_000_000n);
  for (const [field, source] of SUMMED) {
    const parts = hour0.totals[field] - others(0)[field] + (hour1.totals[field] - others(1)[field]);
    assert.equal(parts, straddling[source], field);
  }
  workload.push(straddling);
});

test("GetBillingWindow: exact usage, spans and a gap, with gauge interpolation when asked", async () => {
  const gapCustomer = uniqueId("cust-gap");
  const startMs = firstHourMs;
  const windows = [0, 1, 2, 3, 4, 8, 9].map((minute) =>
    makeMetric({ customerId: gapCustomer, vmId: "vm-gap", region: "eu-west-1", windowStartMs: startMs + minute * MINUTE_MS, windowEndMs: startMs + (minute + 1) * MINUTE_MS }),
  );
  await send(windows, "eu-west-1");
  for (const client of [json, binary]) {
    const report = await client.getBillingWindow({ customerId: gapCustomer, startTime: ts(startMs), endTime: ts(startMs + 10 * MINUTE_MS), interpolateGauges: true });
    assertTotals(report.totals, totalsOf(windows), "window totals");
    assert.equal(report.vms.length, 1);
    assert.deepEqual(report.vms[0].spans.map((s) => [tsMs(s.startTime), tsMs(s.endTime)]), [
      [startMs, startMs + 5 * MINUTE_MS],
      [startMs + 8 * MINUTE_MS, startMs + 10 * MINUTE_MS],
    ]);
    assert.equal(report.gaps.length, 1);
    const gap = report.gaps[0];
    assert.equal(tsMs(gap.startTime), startMs + 5 * MINUTE_MS);
    assert.equal(tsMs(gap.endTime), startMs + 8 * MINUTE_MS);
    assert.equal(gap.interpolated, true);
    // Linear from the gauge before to the gauge after over 180 s; both are
    // whole bytes, so (a + b) * 180 / 2 is exact.
    const expected = ((windows[4].memoryBytesUsed + windows[5].memoryBytesUsed) * 180n) / 2n;
    assert.equal(gap.interpolatedMemoryBytesSeconds, expected);
  }
  // Without interpolation, the gap is reported and nothing is estimated.
  const plain = await binary.getBillingWindow({ customerId: gapCustomer, startTime: ts(startMs), endTime: ts(startMs + 10 * MINUTE_MS) });
  assert.equal(plain.gaps.length, 1);
  assert.equal(plain.gaps[0].interpolated, false);
  assert.equal(plain.gaps[0].interpolatedMemoryBytesSeconds, 0n);
  // Half a window: exactly half its active time.
  const half = await binary.getBillingWindow({ customerId: gapCustomer, startTime: ts(startMs + 30_000), endTime: ts(startMs + MINUTE_MS) });
  assert.equal(half.totals.vmActiveNanos, 30_000_000_000n);
  assert.equal(half.totals.windowCount, 0n);
});

test("an unknown customer has zero usage, not an error", async () => {
  const usage = await json.getCustomerUsage({ customerId: uniqueId("nobody"), startTime: ts(firstHourMs), endTime: ts(firstHourMs + HOUR_MS), granularity: GRANULARITY.hour });
  assert.equal(usage.totals.cpuTimeNanos, 0n);
  assert.equal(usage.buckets.length, 1);
  assert.equal(usage.vms.length, 0);
  const window = await binary.getBillingWindow({ customerId: uniqueId("nobody"), startTime: ts(firstHourMs), endTime: ts(firstHourMs + HOUR_MS) });
  assert.equal(window.vms.length, 0);
  assert.equal(window.gaps.length, 0);
});

test("bad ranges are invalid_argument with a clear message", async () => {
  const cases = [
    [{ customerId: customer, startTime: ts(firstHourMs + 1000), endTime: ts(firstHourMs + HOUR_MS), granularity: GRANULARITY.hour }, /aligned/],
    [{ customerId: customer, startTime: ts(firstHourMs + HOUR_MS), endTime: ts(firstHourMs), granularity: GRANULARITY.hour }, /before/],
    [{ customerId: customer, startTime: ts(firstHourMs), endTime: ts(firstHourMs + HOUR_MS) }, /granularity/],
    [{ customerId: customer, startTime: ts(firstHourMs), endTime: ts(firstHourMs + 800 * HOUR_MS), granularity: GRANULARITY.hour }, /more than 744/],
    [{ customerId: "", startTime: ts(firstHourMs), endTime: ts(firstHourMs + HOUR_MS), granularity: GRANULARITY.hour }, /customer_id/],
    [{ customerId: customer, endTime: ts(firstHourMs + HOUR_MS), granularity: GRANULARITY.hour }, /required/],
  ];
  for (const [request, message] of cases) {
    const err = await expectConnectError(json.getCustomerUsage(request), Code.InvalidArgument);
    assert.match(err.rawMessage, message);
  }
  const tooLong = await expectConnectError(
    binary.getBillingWindow({ customerId: customer, startTime: ts(firstHourMs), endTime: ts(firstHourMs + 40 * DAY_MS) }),
    Code.InvalidArgument,
  );
  assert.match(tooLong.rawMessage, /longer than 31 days/);
});
