// Node-to-node TLS (caf-openssl): nodes whose certificates a common CA signed
// route to each other; a node with a certificate from another CA is refused,
// so writes for its customers are held and reads for them are unavailable.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { batchRequest } from "./lib/batch.mjs";
import { Code, ConnectError, collectorClients, queryClient } from "./lib/clients.mjs";
import { ownerOf, planCluster } from "./lib/cluster.mjs";
import { makeMetric, ts, uniqueId } from "./lib/metrics.mjs";
import { makeTempDir, removeTempDir, runBillingd } from "./lib/server.mjs";
import { makeCertificates } from "./lib/tls.mjs";

const certs = makeCertificates({ nodes: true });
const tlsArgs = (name, ca) => [`--cluster-tls-cert-file=${certs.file(`${name}.crt`)}`, `--cluster-tls-key-file=${certs.file(`${name}.key`)}`, `--cluster-tls-ca-file=${certs.file(`${ca}.crt`)}`];
const clusters = [];
after(async () => {
  for (const c of clusters) {
    await c.stopAll();
    for (const node of c.nodes) removeTempDir(node.dataDir);
  }
  removeTempDir(certs.dir);
});

// A customer that node `nodeId` of `nodeIds` owns.
function customerOwnedBy(nodeId, nodeIds) {
  for (;;) {
    const c = uniqueId("cust-tls");
    if (ownerOf(c, nodeIds) === nodeId) return c;
  }
}

const dayMs = 86_400_000;
const usageRequest = (customerId) => {
  const startMs = Math.floor(Date.now() / dayMs) * dayMs - dayMs;
  return { customerId, startTime: ts(startMs), endTime: ts(startMs + 2 * dayMs), granularity: 2 };
};

test("nodes with certificates of the cluster CA route to each other over TLS", async () => {
  const cluster = await planCluster(2, { args: tlsArgs("node", "test-ca") });
  clusters.push(cluster);
  await cluster.startAll();
  const customerId = customerOwnedBy("n2", cluster.nodeIds);
  const metrics = [1, 2, 3].map((m) => makeMetric({ customerId, vmId: "vm-tls", minutesAgo: m + 1 }));
  const response = await collectorClients(cluster.nodes[0].server.baseUrl).binary.sendMetricsBatch(batchRequest(metrics));
  assert.equal(response.acceptedCount, 3);
  assert.equal(await cluster.gauge(0, "handoff_pending"), 0, "written straight to the owner, not held");
  assert.equal(await cluster.gauge(0, "peers_connected"), 1);
  const usage = await queryClient(cluster.nodes[0].server.baseUrl).getCustomerUsage(usageRequest(customerId));
  assert.equal(usage.totals.cpuTimeNanos, metrics.reduce((s, m) => s + m.cpuTimeNanos, 0n));
  assert.match(cluster.nodes[0].server.stderr, /peers reach it on 127\.0\.0\.1:\d+ \(TLS\)/);
});

test("a node whose certificate another CA signed is refused: its customers' writes are held, reads unavailable", async () => {
  const cluster = await planCluster(2, { nodeArgs: (i) => (i === 0 ? tlsArgs("node", "test-ca") : tlsArgs("stranger-node", "stranger-ca")) });
  clusters.push(cluster);
  await cluster.startAll();
  const customerId = customerOwnedBy("n2", cluster.nodeIds);
  const metric = makeMetric({ customerId, vmId: "vm-tls", minutesAgo: 2 });
  const response = await collectorClients(cluster.nodes[0].server.baseUrl).binary.sendMetricsBatch(batchRequest([metric]));
  assert.equal(response.acceptedCount, 1, "acknowledged: held durably for n2");
  assert.equal(await cluster.gauge(0, "handoff_pending"), 1);
  assert.equal(await cluster.gauge(0, "peers_connected"), 0);
  const refused = await queryClient(cluster.nodes[0].server.baseUrl)
    .getCustomerUsage(usageRequest(customerId))
    .then(
      () => undefined,
      (err) => ConnectError.from(err),
    );
  assert.equal(refused?.code, Code.Unavailable);
});

test("a bad cluster configuration stops billingd at start with a message naming the flag", async () => {
  const dataDir = makeTempDir();
  const start = (args) => runBillingd(["--listen=127.0.0.1:0", `--data-dir=${dataDir}`, "--insecure-no-auth", ...args], { timeoutMs: 15_000 });
  await assert.rejects(start(["--node-id=n1", "--cluster-members=n1@127.0.0.1"]), /\(2\)[\s\S]*--cluster-members: cluster member .*n1@127\.0\.0\.1.*expected id@host:port/);
  await assert.rejects(start(["--node-id=n9", "--cluster-members=n1@127.0.0.1:4101,n2@127.0.0.1:4102"]), /\(2\)[\s\S]*--cluster-members\/--node-id/);
  await assert.rejects(start(["--cluster-members=n1@127.0.0.1:4101"]), /\(2\)[\s\S]*needs --node-id/);
  await assert.rejects(
    start(["--node-id=n1", "--cluster-members=n1@127.0.0.1:4101", `--cluster-tls-cert-file=${certs.file("node.crt")}`]),
    /\(2\)[\s\S]*needs all of --cluster-tls-cert-file/,
  );
  // Replica sets and leader epochs live in etcd only: a static member list
  // (or none) cannot replicate, and billingd says so instead of running at R = 1.
  await assert.rejects(start(["--replication-factor=3"]), /\(2\)[\s\S]*--replication-factor above 1 needs --etcd-endpoints/);
  await assert.rejects(
    start(["--node-id=n1", "--cluster-members=n1@127.0.0.1:4101,n2@127.0.0.1:4102", "--replication-factor=2"]),
    /\(2\)[\s\S]*--replication-factor above 1 needs --etcd-endpoints/,
  );
  removeTempDir(dataDir);
});
