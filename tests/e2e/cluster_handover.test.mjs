// Shard hand-over (issue 5): a 2-node cluster grows to 3 nodes. On restart
// with the new member list every node hands the customers it no longer owns
// to their new owner (raw windows re-ingested there, then deleted here);
// afterwards every customer's totals are unchanged from any node and its
// windows live only on its new rendezvous owner.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { batchRequest } from "./lib/batch.mjs";
import { collectorClients, queryClient } from "./lib/clients.mjs";
import { ownerOf, planCluster } from "./lib/cluster.mjs";
import { makeMetric, ts, uniqueId } from "./lib/metrics.mjs";
import { dumpWindows, removeTempDir } from "./lib/server.mjs";

const CUSTOMERS = Array.from({ length: 24 }, (_, i) => uniqueId(`cust-move-${i}`));
const cluster = await planCluster(3);
after(async () => {
  await cluster.stopAll();
  for (const node of cluster.nodes) removeTempDir(node.dataDir);
});

const written = new Map(CUSTOMERS.map((c) => [c, []]));
const dayMs = 86_400_000;

async function totalsVia(i, customerId) {
  const startMs = Math.floor(Date.now() / dayMs) * dayMs - dayMs;
  const usage = await queryClient(cluster.nodes[i].server.baseUrl).getCustomerUsage({ customerId, startTime: ts(startMs), endTime: ts(startMs + 2 * dayMs), granularity: 2 });
  return usage.totals;
}

function expected(customerId) {
  const ms = written.get(customerId);
  return { windowCount: BigInt(ms.length), cpuTimeNanos: ms.reduce((s, m) => s + m.cpuTimeNanos, 0n), networkRxBytes: ms.reduce((s, m) => s + m.networkRxBytes, 0n) };
}

test("growing from 2 to 3 nodes moves exactly the customers the new node owns, with their totals unchanged", async () => {
  const two = ["n1", "n2"];
  const three = cluster.nodeIds;
  const moving = CUSTOMERS.filter((c) => ownerOf(c, two) !== ownerOf(c, three));
  assert.ok(moving.length > 0 && moving.length < CUSTOMERS.length, "some customers move, not all");
  assert.ok(moving.every((c) => ownerOf(c, three) === "n3"), "rendezvous hashing moves customers only to the new node");

  await cluster.startAll({ members: [0, 1] });
  for (const region of ["us-east-1", "eu-west-1"]) {
    for (const minutesAgo of [2, 3, 4]) {
      const metrics = CUSTOMERS.map((customerId) => makeMetric({ customerId, region, vmId: `vm-${region}`, minutesAgo }));
      const response = await collectorClients(cluster.nodes[minutesAgo % 2].server.baseUrl).binary.sendMetricsBatch(batchRequest(metrics, { region }));
      assert.equal(response.acceptedCount, metrics.length);
      for (const m of metrics) written.get(m.customerId).push(m);
    }
  }
  await cluster.stopAll();

  await cluster.startAll();
  const deadline = Date.now() + 60_000;
  while ((await cluster.gaugeSum("handover_customers")) < moving.length) {
    assert.ok(Date.now() < deadline, `hand-over incomplete after 60 s: ${await cluster.gaugeSum("handover_customers")} of ${moving.length}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await cluster.gaugeSum("handover_customers"), moving.length, "only customers whose owner changed were moved");
  for (const [c, customerId] of CUSTOMERS.entries()) {
    const totals = await totalsVia(c % 3, customerId);
    for (const [field, value] of Object.entries(expected(customerId))) assert.equal(totals[field], value, `${customerId} ${field}`);
  }

  // New writes for a moved customer go to its new owner; re-sending an old
  // window there is a duplicate (the dedup index moved with the windows).
  const mover = moving[0];
  const again = await collectorClients(cluster.nodes[0].server.baseUrl).binary.sendMetricsBatch(batchRequest([written.get(mover)[0]], { region: written.get(mover)[0].region }));
  assert.equal(again.duplicateCount, 1);

  await cluster.stopAll();
  for (const customerId of CUSTOMERS) {
    const holders = [];
    for (const node of cluster.nodes) if ((await dumpWindows(node.dataDir, customerId)).length > 0) holders.push(node.id);
    assert.deepEqual(holders, [ownerOf(customerId, three)], `${customerId} is stored on ${holders}`);
  }
});
