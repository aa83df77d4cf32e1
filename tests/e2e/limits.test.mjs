// The configurable ingest limits (--max-batch-items, --max-vcpus) on a server
// started with small values, through the stock Connect clients.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { collectorClients, Code, expectConnectError } from "./lib/clients.mjs";
import { assertRejectionMessages, batchRequest, expectedSummary, summarize } from "./lib/batch.mjs";
import { makeMetric, uniqueId } from "./lib/metrics.mjs";
import { dumpWindows, startServer } from "./lib/server.mjs";
import { assertStoredExactly } from "./lib/stored.mjs";

let server;
let clients;
const stored = [];
const customerId = uniqueId("cust-limits");

before(async () => {
  server = await startServer({ args: ["--max-batch-items=3", "--max-vcpus=2"] });
  clients = collectorClients(server.baseUrl);
});

after(async () => {
  await server?.cleanup();
});

test("a batch above --max-batch-items fails with resource_exhausted and stores nothing", async () => {
  const metrics = [1, 2, 3, 4].map((i) => makeMetric({ customerId, vmId: `vm-${i}`, minutesAgo: 5, cpuTimeNanos: 1_000_000_000n }));
  for (const client of [clients.json, clients.binary]) {
    await expectConnectError(client.sendMetricsBatch(batchRequest(metrics)), Code.ResourceExhausted);
  }
  // Exactly at the limit is fine, and none of the refused windows was stored.
  const response = await clients.binary.sendMetricsBatch(batchRequest(metrics.slice(0, 3)));
  assert.deepEqual(summarize(response), expectedSummary(3));
  stored.push(...metrics.slice(0, 3));
});

test("--max-vcpus bounds cpu_time_nanos at window length x vCPUs", async () => {
  const limit = 60n * 1_000_000_000n * 2n;
  const atLimit = makeMetric({ customerId, vmId: "vm-at-limit", minutesAgo: 6, cpuTimeNanos: limit });
  const above = makeMetric({ customerId, vmId: "vm-above-limit", minutesAgo: 6, cpuTimeNanos: limit + 1n });
  const response = await clients.json.sendMetricsBatch(batchRequest([above, atLimit]));
  assert.deepEqual(summarize(response), expectedSummary(2, { rejections: { 0: "REJECT_REASON_IMPLAUSIBLE_VALUE" } }));
  assertRejectionMessages(response);
  stored.push(atLimit);
  await expectConnectError(clients.binary.sendMetrics({ metrics: makeMetric({ customerId, vmId: "vm-single", minutesAgo: 6, cpuTimeNanos: limit + 1n }) }), Code.InvalidArgument);
});

test("only the accepted windows are stored", async () => {
  const { code, signal } = await server.stop();
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, `billingd stderr:\n${server.stderr}`);
  assertStoredExactly(await dumpWindows(server.dataDir, customerId), stored, `customer ${customerId}`);
});
