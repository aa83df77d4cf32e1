// A 3-node cluster of real billingd processes on loopback (issue 5): a
// multi-region workload for many customers goes in through all three
// gateways; every customer's totals are exact from any node, a live-usage
// stream works on a node that does not own the customer, a node SIGKILLed
// mid-ingest loses nothing (its parts are held by the others and delivered
// when it is back), and every customer's windows live on exactly one node:
// the one rendezvous hashing names.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { batchRequest } from "./lib/batch.mjs";
import { Code, ConnectError, collectorClients, invoiceClient, queryClient } from "./lib/clients.mjs";
import { ownerOf, planCluster } from "./lib/cluster.mjs";
import { makeMetric, uniqueId, ts } from "./lib/metrics.mjs";
import { dumpWindows, removeTempDir } from "./lib/server.mjs";

const REGIONS = ["us-east-1", "eu-west-1", "ap-south-1"];
const CUSTOMERS = Array.from({ length: 18 }, (_, i) => uniqueId(`cust-cluster-${i}`));
const VMS_PER_REGION = 2;
const GRANULARITY_DAY = 2;

const cluster = await planCluster(3);
after(async () => {
  await cluster.stopAll();
  for (const node of cluster.nodes) removeTempDir(node.dataDir);
});

// Every acknowledged window, by customer.
const acknowledged = new Map(CUSTOMERS.map((c) => [c, []]));

function batchesForMinute(minutesAgo) {
  return REGIONS.map((region) => {
    const metrics = [];
    for (const customerId of CUSTOMERS) {
      for (let vm = 0; vm < VMS_PER_REGION; vm++) {
        metrics.push(makeMetric({ customerId, region, vmId: `vm-${region}-${vm}`, minutesAgo }));
      }
    }
    return batchRequest(metrics, { region, batchId: uniqueId(`batch-${region}-${minutesAgo}`) });
  });
}

function gateway(i) {
  return collectorClients(cluster.nodes[i].server.baseUrl).binary;
}

// Sends through node `i`; on an error (the node is down) the same batch is
// retried through the next live node, as metald retries an unacknowledged
// batch. Records what was acknowledged.
async function sendAcknowledged(batch, i, { live = [0, 1, 2] } = {}) {
  const order = [i, ...live.filter((j) => j !== i)].filter((j) => live.includes(j));
  let lastError;
  for (const j of order) {
    try {
      const response = await gateway(j).sendMetricsBatch(batch);
      assert.equal(response.acceptedCount + response.duplicateCount, batch.metrics.length, JSON.stringify(response.results));
      for (const m of batch.metrics) acknowledged.get(m.customerId).push(m);
      return response;
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      lastError = err;
    }
  }
  throw lastError;
}

function expectedTotals(metrics) {
  // Dedup by identity: a batch retried through another node may have been
  // stored in part before its first attempt failed.
  const unique = new Map(metrics.map((m) => [`${m.region}|${m.vmId}|${m.windowStart.seconds}`, m]));
  const sum = (field) => [...unique.values()].reduce((s, m) => s + m[field], 0n);
  return {
    windowCount: BigInt(unique.size),
    cpuTimeNanos: sum("cpuTimeNanos"),
    memoryBytesSeconds: sum("memoryBytesSeconds"),
    networkTxBytes: sum("networkTxBytes"),
    diskReadBytes: sum("diskReadBytes"),
  };
}

async function usageOf(customerId, viaNode) {
  const now = Date.now();
  const dayMs = 86_400_000;
  const startMs = Math.floor(now / dayMs) * dayMs - dayMs;
  return queryClient(cluster.nodes[viaNode].server.baseUrl).getCustomerUsage({
    customerId,
    startTime: ts(startMs),
    endTime: ts(startMs + 2 * dayMs),
    granularity: GRANULARITY_DAY,
  });
}

async function assertAllTotals(what) {
  for (const [c, customerId] of CUSTOMERS.entries()) {
    const usage = await usageOf(customerId, c % 3);
    const expected = expectedTotals(acknowledged.get(customerId));
    for (const [field, value] of Object.entries(expected)) {
      assert.equal(usage.totals[field], value, `${what}: ${customerId} ${field} (asked node ${c % 3 + 1}, owner ${ownerOf(customerId, cluster.nodeIds)})`);
    }
  }
}

test("every gateway accepts every customer; totals are exact from any node; re-sends through another node are duplicates", async () => {
  await cluster.startAll();
  const owners = new Set(CUSTOMERS.map((c) => ownerOf(c, cluster.nodeIds)));
  assert.equal(owners.size, 3, "the workload's customers spread over all three nodes");

  const batches = [2, 3, 4, 5].flatMap((minute) => batchesForMinute(minute));
  await Promise.all(batches.map((batch, k) => sendAcknowledged(batch, k % 3)));
  await assertAllTotals("after ingest");

  for (const [k, batch] of batches.entries()) {
    const response = await gateway((k + 1) % 3).sendMetricsBatch(batch);
    assert.equal(response.duplicateCount, batch.metrics.length, `batch ${k} re-sent through another node`);
  }
  await assertAllTotals("after re-sends");
});

test("a live-usage stream on a node that does not own the customer gets the owner's updates", async () => {
  const customerId = CUSTOMERS.find((c) => ownerOf(c, cluster.nodeIds) === "n3");
  const abort = new AbortController();
  const stream = queryClient(cluster.nodes[0].server.baseUrl)
    .streamLiveUsage({ customerId }, { signal: abort.signal })
    [Symbol.asyncIterator]();
  try {
    const snapshot = (await stream.next()).value;
    assert.equal(snapshot.snapshot, true);
    assert.equal(snapshot.customerId, customerId);
    const metric = makeMetric({ customerId, region: "us-east-1", vmId: "vm-stream", minutesAgo: 6 });
    await sendAcknowledged(batchRequest([metric], { region: "us-east-1" }), 1);
    const update = (await stream.next()).value;
    assert.equal(update.snapshot, false);
    assert.equal(update.delta.cpuTimeNanos, metric.cpuTimeNanos);
    assert.equal(update.sequence, snapshot.sequence + 1n);
  } finally {
    abort.abort();
  }
});

test("plans and invoices from any node: the default plan on every node, a customer's on its owner", async () => {
  const invoices = (i) => invoiceClient(cluster.nodes[i].server.baseUrl);
  const effectiveFrom = ts(Date.UTC(2026, 0, 1));
  const cpu = { dimension: 1, tiers: [{ price: "0.04" }] };
  // The default plan, set through n1, is every node's.
  await invoices(0).setCustomerPlan({ customerId: "", version: { effectiveFrom, prices: [cpu], monthlyBaseFee: "5" } });
  for (const i of [0, 1, 2]) {
    const plan = await invoices(i).getCustomerPlan({ customerId: "" });
    assert.equal(plan.versions.at(-1).monthlyBaseFee, "5", `default plan on node ${i + 1}`);
  }
  // A customer's plan set through a node that does not own it lands on its owner.
  const customerId = CUSTOMERS.find((c) => ownerOf(c, cluster.nodeIds) === "n3");
  await invoices(0).setCustomerPlan({ customerId, version: { effectiveFrom, prices: [cpu], monthlyBaseFee: "7" } });
  const plan = await invoices(1).getCustomerPlan({ customerId });
  assert.equal(plan.versions.at(-1).monthlyBaseFee, "7");
  // Its draft invoice, asked through another node, prices the owner's usage.
  const now = new Date();
  const periodStart = ts(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const { invoice } = await invoices(1).getInvoice({ customerId, periodStart });
  assert.equal(invoice.customerId, customerId);
  // One usage line per region: their quantities add up to the cpu time.
  const cpuBilled = invoice.lines.filter((line) => line.kind === 1 && line.dimension === 1).reduce((sum, line) => sum + BigInt(line.quantityBaseUnits), 0n);
  const cpuNanos = expectedTotals(acknowledged.get(customerId).filter((m) => Number(m.windowStart.seconds) * 1000 >= Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))).cpuTimeNanos;
  assert.equal(cpuBilled, cpuNanos, "the invoice counts the owner's cpu time");
  // Finalizing every customer of a past period runs on every node (none has usage there).
  const finalized = await invoices(2).finalizeInvoices({ periodStart: ts(Date.UTC(2026, 0, 1)) });
  assert.equal(finalized.invoices.length, 0);
});

test("SIGKILL of a node mid-ingest: writes for it are held and delivered; totals equal what was acknowledged", async () => {
  const killed = 1; // n2
  const ownedByKilled = CUSTOMERS.filter((c) => ownerOf(c, cluster.nodeIds) === "n2");
  assert.ok(ownedByKilled.length > 0);

  const batches = [7, 8, 9, 10, 11, 12].flatMap((minute) => batchesForMinute(minute));
  let sent = 0;
  const sending = (async () => {
    for (const [k, batch] of batches.entries()) {
      // Through all three gateways while n2 lives, then through the others.
      const live = cluster.nodes[killed].server.running ? [0, 1, 2] : [0, 2];
      await sendAcknowledged(batch, k % 3, { live });
      sent++;
    }
  })();
  while (sent < 4) await new Promise((r) => setTimeout(r, 5));
  await cluster.nodes[killed].server.kill();
  await sending;

  // While n2 is down its customers' reads are unavailable, with a clear message.
  const down = await usageOf(ownedByKilled[0], 0).then(
    () => undefined,
    (err) => ConnectError.from(err),
  );
  assert.ok(down, "a query for a customer of the dead node must fail");
  assert.equal(down.code, Code.Unavailable);
  assert.match(down.rawMessage, /owned by node 'n2'.*unreachable/);
  assert.ok((await cluster.gauge(0, "handoff_pending")) + (await cluster.gauge(2, "handoff_pending")) > 0, "writes were held for n2");

  await cluster.start(killed);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pending = (await cluster.gauge(0, "handoff_pending")) + (await cluster.gauge(2, "handoff_pending"));
    if (pending === 0) break;
    assert.ok(Date.now() < deadline, `held writes not delivered within 30 s (${pending} left)`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok((await cluster.gauge(0, "handoff_delivered")) + (await cluster.gauge(2, "handoff_delivered")) > 0);
  await assertAllTotals("after the node came back");

  // Delivering twice changes nothing: re-sending the whole phase is all duplicates.
  for (const [k, batch] of batches.entries()) {
    const response = await gateway(k % 3).sendMetricsBatch(batch);
    assert.equal(response.duplicateCount, batch.metrics.length);
  }
  await assertAllTotals("after re-sending everything");
});

test("every customer's windows are stored on exactly one node: its rendezvous owner", async () => {
  await cluster.stopAll();
  for (const customerId of CUSTOMERS) {
    const holders = [];
    for (const node of cluster.nodes) {
      const windows = await dumpWindows(node.dataDir, customerId);
      if (windows.length > 0) holders.push({ node: node.id, count: windows.length });
    }
    assert.equal(holders.length, 1, `${customerId} is stored on ${JSON.stringify(holders)}`);
    assert.equal(holders[0].node, ownerOf(customerId, cluster.nodeIds));
    assert.equal(BigInt(holders[0].count), expectedTotals(acknowledged.get(customerId)).windowCount);
  }
});
