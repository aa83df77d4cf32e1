// Cluster coordination in etcd (issue 15), with a real etcd and real billingd
// processes on loopback: 3 nodes find each other through etcd; a 4th joins
// while load runs and takes customers without a restart of the others; it is
// removed again (leaves and hands its customers over); a node is SIGKILLed
// and drops out when its lease expires, then comes back; etcd restarts during
// ingest (readiness and metrics say so, ingest goes on); invoice numbers are
// unique across nodes and restarts. Throughout, every customer's totals equal
// exactly what was acknowledged, and at the end each customer's windows are
// on exactly one node.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import { batchRequest } from "./lib/batch.mjs";
import { collectorClients, invoiceClient, queryClient } from "./lib/clients.mjs";
import { planEtcdCluster, startEtcd } from "./lib/etcd.mjs";
import { makeMetric, ts, uniqueId } from "./lib/metrics.mjs";
import { dumpWindows } from "./lib/server.mjs";

const CUSTOMERS = Array.from({ length: 24 }, (_, i) => uniqueId(`cust-etcd-${i}`));
const DAY = 86_400_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let etcd;
let cluster;
before(async () => {
  etcd = await startEtcd();
  cluster = await planEtcdCluster(4, etcd);
});
after(async () => {
  await cluster?.stopAll();
  cluster?.cleanup();
  await etcd?.cleanup();
});

// Every window whose ingest was acknowledged (accepted, or a duplicate of an
// earlier attempt that was stored), by customer.
const acknowledged = new Map(CUSTOMERS.map((c) => [c, []]));
let round = 0;

// Sends one window per customer through a running node, retrying (through
// the next node) until acknowledged.
async function sendRound() {
  const vmId = `vm-${round++}`;
  const metrics = CUSTOMERS.map((customerId) => makeMetric({ customerId, vmId, region: "us-east-1", minutesAgo: 2 }));
  for (let attempt = 0; ; attempt++) {
    const running = cluster.running();
    const [node] = running[(round + attempt) % running.length];
    try {
      const answer = await collectorClients(node.server.baseUrl).binary.sendMetricsBatch(batchRequest(metrics, { region: "us-east-1" }));
      if (answer.acceptedCount + answer.duplicateCount === metrics.length) break;
    } catch {
      // a node going away mid-call: try again
    }
    assert.ok(attempt < 50, "a round was never acknowledged");
    await sleep(100);
  }
  for (const m of metrics) acknowledged.get(m.customerId).push(m);
}

// Sends rounds until `stop()` is called; resolves with the number sent.
function loadWhile() {
  let running = true;
  const done = (async () => {
    let sent = 0;
    while (running) {
      await sendRound();
      sent++;
      await sleep(50);
    }
    return sent;
  })();
  return { stop: async () => ((running = false), done) };
}

async function totalsVia(i, customerId) {
  const startMs = Math.floor(Date.now() / DAY) * DAY - DAY;
  const usage = await queryClient(cluster.nodes[i].server.baseUrl).getCustomerUsage({ customerId, startTime: ts(startMs), endTime: ts(startMs + 2 * DAY), granularity: 2 });
  return usage.totals;
}

// Every customer's totals, asked through each running node in turn, equal
// exactly what was acknowledged; retried while hand-overs settle.
async function expectExactTotals(label, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const wrong = [];
    const running = cluster.running();
    for (const [c, customerId] of CUSTOMERS.entries()) {
      const ms = acknowledged.get(customerId);
      const [, i] = running[c % running.length];
      try {
        const totals = await totalsVia(i, customerId);
        const cpu = ms.reduce((s, m) => s + m.cpuTimeNanos, 0n);
        if (totals.windowCount !== BigInt(ms.length) || totals.cpuTimeNanos !== cpu) wrong.push(`${customerId}: ${totals.windowCount}/${ms.length} windows`);
      } catch (error) {
        wrong.push(`${customerId}: ${error.message}`);
      }
    }
    if (wrong.length === 0) return;
    if (Date.now() > deadline) assert.fail(`${label}: ${wrong.length} customers off, e.g. ${wrong.slice(0, 3).join("; ")}`);
    await sleep(250);
  }
}

test("3 nodes register in etcd and serve every customer from any node", async () => {
  for (const i of [0, 1, 2]) await cluster.start(i);
  await cluster.waitMembers(3);
  for (const [, i] of cluster.running()) assert.equal(await cluster.gauge(i, "etcd_reachable"), 1);
  // Its registration names its middleman and its bound gateway address.
  const gateway = `127.0.0.1:${cluster.nodes[1].server.port}`;
  let member;
  for (let tries = 0; tries < 50; tries++, await sleep(100)) {
    member = JSON.parse(await etcd.get("/billing/members/n2"));
    if (member.gateway === gateway) break;
  }
  assert.deepEqual(member, { nodeId: "n2", clusterHost: "127.0.0.1", clusterPort: cluster.nodes[1].clusterPort, gateway });
  for (let r = 0; r < 3; r++) await sendRound();
  await expectExactTotals("3 nodes");
});

test("a 4th node joins under load and takes customers without restarting the others", async () => {
  const pids = cluster.nodes.slice(0, 3).map((n) => n.server.child.pid);
  const load = loadWhile();
  await sleep(300);
  await cluster.start(3, ["--etcd-leave-on-stop"]);
  await cluster.waitMembers(4);
  // The others hand over what n4 owns now.
  const deadline = Date.now() + 30_000;
  while ((await cluster.gaugeSum("handover_customers")) === 0) {
    assert.ok(Date.now() < deadline, "no customer was handed over to the new node");
    await sleep(100);
  }
  await sleep(500);
  const sent = await load.stop();
  assert.ok(sent > 0);
  await expectExactTotals("after n4 joined");
  assert.deepEqual(cluster.nodes.slice(0, 3).map((n) => n.server.child.pid), pids, "no node was restarted");
  for (const i of [0, 1, 2]) assert.ok(cluster.nodes[i].server.running);
  // n4 owns customers now: some of their windows live there.
  let onN4 = 0;
  for (const customerId of CUSTOMERS) onN4 += (await totalsVia(3, customerId)).windowCount > 0n ? 1 : 0;
  assert.equal(onN4, CUSTOMERS.length, "n4 answers every customer");
});

test("a node removed (SIGTERM with --etcd-leave-on-stop) hands its customers over first", async () => {
  const load = loadWhile();
  await sleep(300);
  await cluster.nodes[3].server.stop({ timeoutMs: 40_000 });
  assert.match(cluster.nodes[3].server.stderr, /every customer handed over/);
  await cluster.waitMembers(3);
  await load.stop();
  await expectExactTotals("after n4 left");
});

test("a SIGKILLed node drops out when its lease expires and gets its customers back on restart", async () => {
  await cluster.nodes[2].server.kill();
  await cluster.waitMembers(2, 15_000);
  // Its customers have live owners now: ingest for them is stored and acknowledged.
  for (let r = 0; r < 3; r++) await sendRound();
  await cluster.start(2);
  await cluster.waitMembers(3);
  await expectExactTotals("after n3 came back", 40_000);
});

test("etcd restarted during ingest: readiness says so, ingest goes on, the cluster recovers", async () => {
  const load = loadWhile();
  await sleep(300);
  await etcd.stop();
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ready = await fetch(`${cluster.nodes[0].server.baseUrl}/readyz`);
    if (ready.status === 503) {
      assert.match(await ready.text(), /etcd unreachable/);
      break;
    }
    assert.ok(Date.now() < deadline, "readyz never reported etcd unreachable");
    await sleep(100);
  }
  assert.equal(await cluster.gauge(0, "etcd_reachable"), 0);
  assert.ok((await cluster.gauge(0, "etcd_errors")) > 0);
  await sleep(1000);  // ingest while etcd is down
  await etcd.start();
  await load.stop();
  const back = Date.now() + 20_000;
  while ((await fetch(`${cluster.nodes[0].server.baseUrl}/readyz`)).status !== 200) {
    assert.ok(Date.now() < back, "readyz did not recover");
    await sleep(100);
  }
  await cluster.waitMembers(3);
  await expectExactTotals("after etcd restarted");
  for (const [, i] of cluster.running()) assert.match(cluster.nodes[i].server.stderr, /etcd unreachable/);
});

test("invoice numbers are unique and increasing across nodes and restarts", async () => {
  const invoices = (i) => invoiceClient(cluster.nodes[i].server.baseUrl, { binary: true });
  const effectiveFrom = ts(Date.parse("2026-01-01T00:00:00Z"));
  await invoices(0).setCustomerPlan({ customerId: "", version: { effectiveFrom, prices: [{ dimension: 1, tiers: [{ price: "0.04" }] }], monthlyBaseFee: "1" } });
  const billed = CUSTOMERS.slice(0, 12);
  for (const month of ["2026-09", "2026-10"]) {
    const windowEndMs = Date.parse(`${month}-10T00:10:00Z`);
    const metrics = billed.map((customerId) => makeMetric({ customerId, vmId: `vm-${month}`, region: "us-east-1", windowEndMs }));
    const answer = await collectorClients(cluster.nodes[0].server.baseUrl).binary.sendMetricsBatch(batchRequest(metrics, { region: "us-east-1" }));
    // Outside the day expectExactTotals queries: not added to `acknowledged`.
    assert.equal(answer.acceptedCount, metrics.length);
  }
  const sept = await invoices(1).finalizeInvoices({ periodStart: ts(Date.parse("2026-09-01T00:00:00Z")), customerIds: [] });
  assert.equal(sept.invoices.length, billed.length);
  const septNumbers = sept.invoices.map((i) => i.number);
  assert.equal(new Set(septNumbers).size, septNumbers.length, `duplicate numbers ${septNumbers}`);
  // Every node finalized its own customers, yet no number repeats.
  await cluster.nodes[0].server.stop();
  await cluster.start(0);
  await cluster.waitMembers(3);
  const oct = await invoices(2).finalizeInvoices({ periodStart: ts(Date.parse("2026-10-01T00:00:00Z")), customerIds: [] });
  assert.equal(oct.invoices.length, billed.length);
  const octNumbers = oct.invoices.map((i) => i.number);
  assert.equal(new Set([...septNumbers, ...octNumbers]).size, septNumbers.length + octNumbers.length);
  const maxSept = septNumbers.reduce((a, b) => (a > b ? a : b));
  assert.ok(octNumbers.every((n) => n > maxSept), "later finalizations get larger numbers");
  assert.equal(BigInt(await etcd.get("/billing/invoice_number")), octNumbers.reduce((a, b) => (a > b ? a : b)) + 1n);
});

// The documented shard of a customer: SHA-256("shard" | id), first 8 bytes big-endian, mod count.
const shardOf = (customerId, count) => Number(createHash("sha256").update("shard").update(customerId).digest().readBigUInt64BE(0) % BigInt(count));

test("a stale epoch is refused: a node with an old placement cannot make the leader write", async () => {
  // n1 restarts polling etcd only every 3 s: it keeps an old epoch for a while.
  await cluster.nodes[0].server.stop();
  await cluster.start(0, ["--etcd-poll-interval-ms=3000", "--etcd-lease-ttl-seconds=12"]);
  await cluster.waitMembers(3);
  const count = Number(await etcd.get("/billing/shard_count"));
  assert.equal(count, 256);
  // A customer whose shard another node leads.
  let customerId;
  let key;
  for (const c of CUSTOMERS) {
    key = `/billing/shards/${String(shardOf(c, count)).padStart(5, "0")}`;
    if (JSON.parse(await etcd.get(key)).replicas[0] !== "n1") {
      customerId = c;
      break;
    }
  }
  assert.ok(customerId, "some customer is led by n2 or n3");
  const refusedBefore = await cluster.gaugeSum("fence_refused");
  for (let attempt = 0; attempt < 8 && (await cluster.gaugeSum("fence_refused")) === refusedBefore; attempt++) {
    // The epoch goes up (same leader, as an operator fencing it would do);
    // n2 and n3 read it within 200 ms, n1 within 3 s.
    const { value, modRevision } = await etcd.getKv(key);
    const record = JSON.parse(value);
    assert.ok(await etcd.casPut(key, JSON.stringify({ ...record, epoch: String(BigInt(record.epoch) + 1n) }), modRevision));
    await sleep(400);
    const vmId = `vm-fenced-${attempt}`;
    const metric = makeMetric({ customerId, vmId, region: "us-east-1", minutesAgo: 2 });
    const answer = await collectorClients(cluster.nodes[0].server.baseUrl).binary.sendMetricsBatch(batchRequest([metric], { region: "us-east-1" }));
    assert.equal(answer.acceptedCount, 1, "the write is acknowledged (held by n1 when refused)");
    acknowledged.get(customerId).push(metric);
  }
  assert.ok((await cluster.gaugeSum("fence_refused")) > refusedBefore, "the leader refused n1's stale epoch");
  assert.ok(cluster.running().some(([n]) => /stale epoch \d+ for shard \d+/.test(n.server.stderr)));
  // Once n1 reads the placement its held writes reach the leader: nothing lost.
  await expectExactTotals("after the stale epoch", 20_000);
});

test("at the end every customer's windows are on exactly one node", async () => {
  await cluster.stopAll();
  for (const customerId of CUSTOMERS) {
    const holders = [];
    for (const node of cluster.nodes) if ((await dumpWindows(node.dataDir, customerId)).length > 0) holders.push(node.id);
    assert.equal(holders.length, 1, `${customerId} is stored on ${holders}`);
  }
});
