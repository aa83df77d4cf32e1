// billingd talks to an etcd that serves https and demands a client
// certificate (--client-cert-auth): with --etcd-ca-file/--etcd-cert-file/
// --etcd-key-file it registers, is ready and serves; with an untrusted CA or
// no client certificate it stays up, says "etcd unreachable" on /readyz and
// /metrics, and never crashes.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { batchRequest } from "./lib/batch.mjs";
import { collectorClients, queryClient } from "./lib/clients.mjs";
import { freePort } from "./lib/cluster.mjs";
import { startEtcd } from "./lib/etcd.mjs";
import { makeCertificates } from "./lib/tls.mjs";
import { ANCHOR_MS, makeMetric, ts, uniqueId } from "./lib/metrics.mjs";
import { removeTempDir, startServer } from "./lib/server.mjs";

let certs;
let etcd;
const servers = [];
before(async () => {
  // etcd's JSON gateway calls etcd's own gRPC with the server certificate as
  // its client certificate, so under --client-cert-auth that certificate
  // needs both usages: the cluster "node" certificate has them.
  certs = makeCertificates({ nodes: true });
  const tls = { ca: certs.file("test-ca.crt"), cert: certs.file("node.crt"), key: certs.file("node.key"), clientCert: certs.file("client.crt"), clientKey: certs.file("client.key") };
  etcd = await startEtcd({ tls });
});
after(async () => {
  for (const s of servers) await s.cleanup();
  await etcd?.cleanup();
  if (certs) removeTempDir(certs.dir);
});

async function startNode(id, tlsArgs) {
  const server = await startServer({
    args: [`--node-id=${id}`, `--etcd-endpoints=${etcd.endpoint}`, `--cluster-address=127.0.0.1:${await freePort()}`, "--etcd-poll-interval-ms=200", "--etcd-timeout-ms=1000", ...tlsArgs],
  });
  servers.push(server);
  return server;
}

async function waitFor(what, probe, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const gauge = async (server, kind) => {
  const m = new RegExp(`^billing_cluster\\{kind="${kind}"\\} (\\S+)$`, "m").exec(await (await fetch(`${server.baseUrl}/metrics`)).text());
  return m ? Number(m[1]) : undefined;
};

test("with etcd's CA and a client certificate a node registers over https and serves", async () => {
  const server = await startNode("tls-1", [`--etcd-ca-file=${certs.file("test-ca.crt")}`, `--etcd-cert-file=${certs.file("client.crt")}`, `--etcd-key-file=${certs.file("client.key")}`]);
  await waitFor("ready", async () => (await fetch(`${server.baseUrl}/readyz`)).status === 200);
  assert.equal(await gauge(server, "etcd_reachable"), 1);
  await waitFor("one member", async () => (await gauge(server, "etcd_members")) === 1);
  const customerId = uniqueId("etcd-tls");
  const metric = makeMetric({ customerId, minutesAgo: 2 });
  const response = await collectorClients(server.baseUrl).binary.sendMetricsBatch(batchRequest([metric]));
  assert.equal(response.acceptedCount, 1);
  const dayStart = Math.floor(ANCHOR_MS / 86_400_000) * 86_400_000;
  const usage = await queryClient(server.baseUrl).getCustomerUsage({ customerId, startTime: ts(dayStart - 86_400_000), endTime: ts(dayStart + 86_400_000), granularity: 2 });
  assert.equal(usage.totals.cpuTimeNanos, BigInt(metric.cpuTimeNanos));
});

test("an untrusted etcd certificate or a missing client certificate is 'etcd unreachable', not a crash", async () => {
  const untrusted = await startNode("tls-2", [`--etcd-ca-file=${certs.file("stranger-ca.crt")}`, `--etcd-cert-file=${certs.file("client.crt")}`, `--etcd-key-file=${certs.file("client.key")}`]);
  const noClientCert = await startNode("tls-3", [`--etcd-ca-file=${certs.file("test-ca.crt")}`]);
  for (const server of [untrusted, noClientCert]) {
    await waitFor("a refusal", async () => (await gauge(server, "etcd_errors")) > 0);
    const ready = await fetch(`${server.baseUrl}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /etcd unreachable/);
    assert.equal(await gauge(server, "etcd_reachable"), 0);
    assert.ok(server.running, "billingd stays up");
  }
});
