// Durability: what billingd acknowledged survives a crash. Batches are sent,
// the server is SIGKILLed right after the acknowledgements (no shutdown code
// runs), restarted on the same data dir; re-sending the same batches must find
// every window already there, and --dump-windows must show each acknowledged
// window exactly once with exactly its values.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { collectorClients } from "./lib/clients.mjs";
import { batchRequest, expectedSummary, summarize } from "./lib/batch.mjs";
import { makeMetric, uniqueId, withFields } from "./lib/metrics.mjs";
import { dumpWindows, makeTempDir, removeTempDir, startServer } from "./lib/server.mjs";
import { assertStoredExactly } from "./lib/stored.mjs";

const dataDir = makeTempDir();
const servers = [];

after(async () => {
  for (const s of servers) await s.cleanup();
  removeTempDir(dataDir);
});

async function start() {
  const server = await startServer({ dataDir });
  servers.push(server);
  return server;
}

test("acknowledged windows survive SIGKILL: re-sent after restart they are all duplicates, stored once", async () => {
  const customers = [uniqueId("cust-restart-a"), uniqueId("cust-restart-b")];
  const batches = [];
  for (let b = 0; b < 6; b++) {
    const metrics = [];
    for (const customerId of customers) {
      for (let vm = 0; vm < 5; vm++) {
        // Batch b carries minute b + 1 of each VM, oldest batches last.
        metrics.push(makeMetric({ customerId, vmId: `vm-${vm}`, minutesAgo: b + 1, region: vm % 2 ? "" : "us-east-1" }));
      }
    }
    batches.push(batchRequest(metrics, { region: "us-east-1", batchId: uniqueId("batch-restart") }));
  }

  // Phase 1: send everything (both codecs, some batches concurrently) and crash.
  let server = await start();
  let clients = collectorClients(server.baseUrl);
  const first = await Promise.all(batches.map((batch, i) => (i % 2 ? clients.json : clients.binary).sendMetricsBatch(batch)));
  const killed = await server.kill();
  assert.equal(killed.signal, "SIGKILL", "the server was crashed, not stopped");
  first.forEach((response, i) => assert.deepEqual(summarize(response), expectedSummary(batches[i].metrics.length), `batch ${i}`));

  // Phase 2: restart on the same data, re-send the same batches (same batch ids).
  server = await start();
  clients = collectorClients(server.baseUrl);
  for (const [i, batch] of batches.entries()) {
    const response = await (i % 2 ? clients.binary : clients.json).sendMetricsBatch(batch);
    assert.deepEqual(summarize(response), expectedSummary(batch.metrics.length, { duplicates: [...batch.metrics.keys()] }), `re-sent batch ${i}`);
  }
  // A conflicting value is still recognised as such after the restart.
  const conflict = withFields(batches[0].metrics[0], { diskReadOps: batches[0].metrics[0].diskReadOps + 1n });
  const response = await clients.binary.sendMetricsBatch(batchRequest([conflict]));
  assert.deepEqual(summarize(response), expectedSummary(1, { rejections: { 0: "REJECT_REASON_CONFLICTING_DUPLICATE" } }));

  const { code, signal } = await server.stop();
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, `billingd stderr:\n${server.stderr}`);

  // Phase 3: every acknowledged window stored exactly once, region resolved.
  for (const customerId of customers) {
    const expected = batches
      .flatMap((batch) => batch.metrics)
      .filter((m) => m.customerId === customerId)
      .map((m) => (m.region ? m : withFields(m, { region: "us-east-1" })));
    assert.equal(expected.length, 30);
    assertStoredExactly(await dumpWindows(dataDir, customerId), expected, `customer ${customerId}`);
  }
});

test("a window acknowledged just before SIGKILL is there after restart", async () => {
  // The tightest case: kill the moment the single acknowledgement arrives.
  const customerId = uniqueId("cust-restart-single");
  const m = makeMetric({ customerId, vmId: "vm-last", minutesAgo: 2 });
  let server = await start();
  const ack = await collectorClients(server.baseUrl).binary.sendMetricsBatch(batchRequest([m]));
  await server.kill();
  assert.deepEqual(summarize(ack), expectedSummary(1));

  server = await start();
  const again = await collectorClients(server.baseUrl).json.sendMetricsBatch(batchRequest([m]));
  assert.deepEqual(summarize(again), expectedSummary(1, { duplicates: [0] }));
  const { code } = await server.stop();
  assert.equal(code, 0, `billingd stderr:\n${server.stderr}`);
  assertStoredExactly(await dumpWindows(dataDir, customerId), [m], `customer ${customerId}`);
});
