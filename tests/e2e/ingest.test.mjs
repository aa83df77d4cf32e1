// Ingest through stock Connect clients (connect-node, JSON and binary codecs)
// against the real billingd: single sends, batches, duplicates, conflicts,
// per-item validation, regions, several customers. The last test stops the
// server and checks with --dump-windows that exactly the accepted windows are
// stored, with the values first sent.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { collectorClients, Code, expectConnectError } from "./lib/clients.mjs";
import { assertRejectionMessages, batchRequest, expectedSummary, summarize } from "./lib/batch.mjs";
import { BILLED_FIELDS, MINUTE_MS, makeMetric, minuteEndMs, ts, uniqueId, withFields } from "./lib/metrics.mjs";
import { itemStatusName } from "./lib/schema.mjs";
import { dumpWindows, startServer } from "./lib/server.mjs";
import { assertStoredExactly } from "./lib/stored.mjs";

let server;
let clients;

// What the contract says is stored, per customer: every window a test expects
// to be accepted, with its region resolved. Checked at the end.
const expectedStored = new Map();
function expectStored(...metrics) {
  for (const m of metrics) {
    if (!expectedStored.has(m.customerId)) expectedStored.set(m.customerId, []);
    expectedStored.get(m.customerId).push(m);
  }
}

before(async () => {
  server = await startServer();
  clients = collectorClients(server.baseUrl);
});

after(async () => {
  await server?.cleanup();
});

test("SendMetrics over JSON stores a window; the same window over binary is a duplicate", async () => {
  const m = makeMetric({ customerId: uniqueId("cust-single"), vmId: "vm-json", minutesAgo: 7 });
  const first = await clients.json.sendMetrics({ metrics: m, instanceId: "metald-e2e-1" });
  assert.equal(itemStatusName(first.status), "ITEM_STATUS_ACCEPTED");
  const again = await clients.binary.sendMetrics({ metrics: m, instanceId: "metald-e2e-1" });
  assert.equal(itemStatusName(again.status), "ITEM_STATUS_DUPLICATE");
  expectStored(m);
});

test("SendMetrics over binary stores a window; the same window over JSON is a duplicate", async () => {
  const m = makeMetric({ customerId: uniqueId("cust-single"), vmId: "vm-bin", minutesAgo: 8 });
  const first = await clients.binary.sendMetrics({ metrics: m, instanceId: "metald-e2e-2" });
  assert.equal(itemStatusName(first.status), "ITEM_STATUS_ACCEPTED");
  const again = await clients.json.sendMetrics({ metrics: m, instanceId: "metald-e2e-2" });
  assert.equal(itemStatusName(again.status), "ITEM_STATUS_DUPLICATE");
  expectStored(m);
});

test("SendMetrics with changed billed values fails with already_exists, field by field", async () => {
  const used = 3n << 30n;
  const m = makeMetric({ customerId: uniqueId("cust-conflict"), vmId: "vm-1", minutesAgo: 9, memoryBytesUsed: used, memoryBytesPeak: used + (1n << 30n), memoryBytesSeconds: used * 60n });
  assert.equal(itemStatusName((await clients.binary.sendMetrics({ metrics: m })).status), "ITEM_STATUS_ACCEPTED");
  expectStored(m);
  for (const [i, field] of BILLED_FIELDS.entries()) {
    // +1 keeps every variant plausible; only the conflict is wrong with it.
    const changed = withFields(m, { [field]: m[field] + 1n });
    const client = i % 2 ? clients.json : clients.binary;
    const err = await expectConnectError(client.sendMetrics({ metrics: changed }), Code.AlreadyExists).catch((e) => {
      throw new Error(`${field} + 1: ${e.message}`);
    });
    assert.ok(err.rawMessage.length > 0, `${field} + 1: the error has no message`);
  }
  // The stored window is unchanged: the original values still count as a duplicate.
  assert.equal(itemStatusName((await clients.json.sendMetrics({ metrics: m })).status), "ITEM_STATUS_DUPLICATE");
});

test("a re-send that differs only in informational fields is a duplicate", async () => {
  const m = makeMetric({ customerId: uniqueId("cust-info"), vmId: "vm-1", minutesAgo: 10 });
  assert.deepEqual(summarize(await clients.binary.sendMetricsBatch(batchRequest([m]))), expectedSummary(1));
  // metald may recompute the sample time and the utilisation doubles on a retry.
  const recomputed = withFields(m, { timestamp: { seconds: m.windowEnd.seconds - 1n, nanos: 300_000_000 }, cpuUtilizationPct: m.cpuUtilizationPct + 1.5, cpuCoresUsed: m.cpuCoresUsed + 0.25 });
  assert.deepEqual(summarize(await clients.json.sendMetricsBatch(batchRequest([recomputed]))), expectedSummary(1, { duplicates: [0] }));
  assert.equal(itemStatusName((await clients.binary.sendMetrics({ metrics: recomputed })).status), "ITEM_STATUS_DUPLICATE");
  // What stays stored is the first window as sent (checked by the last test).
  expectStored(m);
});

test("SendMetrics with an invalid metric fails with invalid_argument", async () => {
  const customerId = uniqueId("cust-invalid");
  const end = minuteEndMs(3);
  const cases = {
    "missing vm_id": makeMetric({ customerId, vmId: "" }),
    "missing customer_id": makeMetric({ customerId: "" }),
    // SendMetrics has no batch region to inherit.
    "missing region": makeMetric({ customerId, region: "" }),
    "window_start == window_end": makeMetric({ customerId, windowStartMs: end, windowEndMs: end }),
    "window_start > window_end": makeMetric({ customerId, windowStartMs: end + MINUTE_MS, windowEndMs: end }),
    "window in 1999": makeMetric({ customerId, windowEndMs: Date.UTC(1999, 11, 31, 23, 59) }),
    "window 10 min in the future": makeMetric({ customerId, windowEndMs: minuteEndMs(-10) }),
    "peak below used": makeMetric({ customerId, memoryBytesUsed: 2n << 30n, memoryBytesPeak: 1n << 30n }),
    "cpu beyond 512 vCPUs": makeMetric({ customerId, cpuTimeNanos: 60n * 1_000_000_000n * 512n + 1n }),
  };
  for (const [what, m] of Object.entries(cases)) {
    const err = await expectConnectError(clients.json.sendMetrics({ metrics: m }), Code.InvalidArgument).catch((e) => {
      throw new Error(`${what}: ${e.message}`);
    });
    assert.ok(err.rawMessage.length > 0, `${what}: the error has no message`);
  }
});

test("SendMetricsBatch accepts a batch, then answers every item of a re-send as duplicate", async () => {
  const customerId = uniqueId("cust-batch");
  const metrics = [];
  for (let vm = 0; vm < 4; vm++) {
    for (let minute = 1; minute <= 5; minute++) metrics.push(makeMetric({ customerId, vmId: `vm-${vm}`, minutesAgo: minute }));
  }
  const first = await clients.binary.sendMetricsBatch(batchRequest(metrics));
  assert.deepEqual(summarize(first), expectedSummary(20));
  expectStored(...metrics);

  // A metald retry: same windows, new batch id, other codec.
  const retry = await clients.json.sendMetricsBatch(batchRequest(metrics));
  assert.deepEqual(summarize(retry), expectedSummary(20, { duplicates: [...metrics.keys()] }));
});

test("SendMetricsBatch rejects conflicting re-sends per item and keeps the batch going", async () => {
  const customerId = uniqueId("cust-batch-conflict");
  const stored = [0, 1].map((i) => makeMetric({ customerId, vmId: `vm-${i}`, minutesAgo: 12 }));
  assert.deepEqual(summarize(await clients.json.sendMetricsBatch(batchRequest(stored))), expectedSummary(2));
  expectStored(...stored);

  const fresh = makeMetric({ customerId, vmId: "vm-2", minutesAgo: 12 });
  const conflict = withFields(stored[0], { networkTxBytes: stored[0].networkTxBytes + 1n });
  const response = await clients.binary.sendMetricsBatch(batchRequest([conflict, fresh, stored[1]]));
  assert.deepEqual(summarize(response), expectedSummary(3, { duplicates: [2], rejections: { 0: "REJECT_REASON_CONFLICTING_DUPLICATE" } }));
  assertRejectionMessages(response);
  expectStored(fresh);
});

test("SendMetricsBatch judges every item: invalid ones are rejected with their reason", async () => {
  const customerId = uniqueId("cust-mixed");
  const end = minuteEndMs(20);
  const window = (vmId, extra = {}) => makeMetric({ customerId, vmId, windowEndMs: end, ...extra });
  const maxCpu = 60n * 1_000_000_000n * 512n; // window length x default --max-vcpus
  const items = [
    /* 0 */ window("vm-ok-0"),
    /* 1 */ window(""),
    /* 2 */ makeMetric({ customerId: "", vmId: "vm-x", windowEndMs: end }),
    /* 3 */ window("vm-empty-window", { windowStartMs: end, windowEndMs: end }),
    /* 4 */ window("vm-reversed-window", { windowStartMs: end, windowEndMs: end - MINUTE_MS }),
    /* 5 */ window("vm-1999", { windowEndMs: Date.UTC(1999, 5, 1), timestamp: ts(Date.UTC(1999, 5, 1)) }),
    /* 6 */ window("vm-future", { windowEndMs: minuteEndMs(-10), timestamp: ts(minuteEndMs(-10)) }),
    /* 7 */ window("vm-cpu-too-high", { cpuTimeNanos: maxCpu + 1n }),
    /* 8 */ window("vm-cpu-at-limit", { cpuTimeNanos: maxCpu }),
    /* 9 */ window("vm-peak-below-used", { memoryBytesUsed: 4n << 30n, memoryBytesPeak: (4n << 30n) - 1n, memoryBytesSeconds: (4n << 30n) * 60n }),
    /* 10 */ window("vm-no-peak", { memoryBytesUsed: 4n << 30n, memoryBytesPeak: 0n, memoryBytesSeconds: (4n << 30n) * 60n }),
    /* 11 */ window("vm-ok-11"),
  ];
  const response = await clients.binary.sendMetricsBatch(batchRequest(items));
  assert.deepEqual(
    summarize(response),
    expectedSummary(items.length, {
      rejections: {
        1: "REJECT_REASON_MISSING_ID",
        2: "REJECT_REASON_MISSING_ID",
        3: "REJECT_REASON_INVALID_WINDOW",
        4: "REJECT_REASON_INVALID_WINDOW",
        5: "REJECT_REASON_TIMESTAMP_OUT_OF_RANGE",
        6: "REJECT_REASON_TIMESTAMP_OUT_OF_RANGE",
        7: "REJECT_REASON_IMPLAUSIBLE_VALUE",
        9: "REJECT_REASON_IMPLAUSIBLE_VALUE",
      },
    }),
  );
  assertRejectionMessages(response);
  expectStored(items[0], items[8], items[10], items[11]);
});

test("a metric with an empty region inherits the batch region; another region is rejected", async () => {
  const customerId = uniqueId("cust-region");
  const inherits = makeMetric({ customerId, vmId: "vm-inherit", region: "", minutesAgo: 30 });
  const explicit = makeMetric({ customerId, vmId: "vm-explicit", region: "eu-west-1", minutesAgo: 30 });
  const foreign = makeMetric({ customerId, vmId: "vm-foreign", region: "us-east-1", minutesAgo: 30 });
  const response = await clients.json.sendMetricsBatch(batchRequest([inherits, explicit, foreign], { region: "eu-west-1" }));
  assert.deepEqual(summarize(response), expectedSummary(3, { rejections: { 2: "REJECT_REASON_REGION_MISMATCH" } }));
  assertRejectionMessages(response);
  const inheritedAs = withFields(inherits, { region: "eu-west-1" });
  expectStored(inheritedAs, explicit);

  // The identity holds the resolved region: naming it explicitly is a duplicate,
  // in a batch as in SendMetrics.
  const again = await clients.binary.sendMetricsBatch(batchRequest([inheritedAs, withFields(explicit, { region: "" })], { region: "eu-west-1" }));
  assert.deepEqual(summarize(again), expectedSummary(2, { duplicates: [0, 1] }));
  assert.equal(itemStatusName((await clients.binary.sendMetrics({ metrics: inheritedAs })).status), "ITEM_STATUS_DUPLICATE");

  // The same VM and window in another region is another window, even with other values.
  const otherRegion = withFields(inherits, { region: "us-east-1", cpuTimeNanos: inherits.cpuTimeNanos + 7n });
  const elsewhere = await clients.binary.sendMetricsBatch(batchRequest([otherRegion], { region: "us-east-1" }));
  assert.deepEqual(summarize(elsewhere), expectedSummary(1));
  expectStored(otherRegion);
});

test("one batch may carry several customers", async () => {
  const customers = [uniqueId("cust-multi-a"), uniqueId("cust-multi-b"), uniqueId("cust-multi-c")];
  const metrics = [];
  for (let minute = 40; minute < 43; minute++) {
    for (const customerId of customers) metrics.push(makeMetric({ customerId, vmId: "vm-1", minutesAgo: minute }));
  }
  // One of them already stored, so outcomes must land at the right indices.
  await clients.json.sendMetrics({ metrics: metrics[4] });
  const response = await clients.binary.sendMetricsBatch(batchRequest(metrics));
  assert.deepEqual(summarize(response), expectedSummary(9, { duplicates: [4] }));
  expectStored(...metrics);
});

test("an empty batch and a batch without batch_id fail with invalid_argument and store nothing", async () => {
  const customerId = uniqueId("cust-bad-batch");
  const metrics = [makeMetric({ customerId, vmId: "vm-1", minutesAgo: 50 }), makeMetric({ customerId, vmId: "vm-2", minutesAgo: 50 })];
  for (const client of [clients.json, clients.binary]) {
    await expectConnectError(client.sendMetricsBatch(batchRequest([])), Code.InvalidArgument);
    await expectConnectError(client.sendMetricsBatch(batchRequest(metrics, { batchId: "" })), Code.InvalidArgument);
  }
  // Nothing of the refused calls was stored.
  const response = await clients.binary.sendMetricsBatch(batchRequest(metrics));
  assert.deepEqual(summarize(response), expectedSummary(2));
  expectStored(...metrics);
});

test("a batch above the default --max-batch-items (10000) fails with resource_exhausted", async () => {
  const customerId = uniqueId("cust-huge");
  const base = makeMetric({ customerId, vmId: "vm-0", minutesAgo: 1 });
  const metrics = [];
  for (let i = 0; i < 10_001; i++) metrics.push(withFields(base, { vmId: `vm-${i}` }));
  await expectConnectError(clients.binary.sendMetricsBatch(batchRequest(metrics)), Code.ResourceExhausted);
});

test("SIGTERM stops the server with exit code 0 and it stored exactly the accepted windows", async () => {
  const { code, signal } = await server.stop({ signal: "SIGTERM" });
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, `billingd stderr:\n${server.stderr}`);
  assert.ok(expectedStored.size > 0);
  for (const [customerId, metrics] of expectedStored) {
    assertStoredExactly(await dumpWindows(server.dataDir, customerId), metrics, `customer ${customerId}`);
  }
  // A customer that never sent anything has no windows.
  assert.deepEqual(await dumpWindows(server.dataDir, uniqueId("cust-never")), []);
});
