// A real etcd (Debian's etcd-server; $ETCD_BINARY or /usr/bin/etcd) on
// loopback for the cluster tests, and billingd nodes that coordinate through
// it. etcd refuses port 0, so its ports are picked free first.
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import https from "node:https";
import { freePort } from "./cluster.mjs";
import { makeTempDir, removeTempDir, startServer } from "./server.mjs";

const ETCD = process.env.ETCD_BINARY ?? "/usr/bin/etcd";

// With `tls` ({ca, cert, key}: PEM file paths), etcd serves https and asks
// every client for a certificate signed by `ca` (--client-cert-auth).
// etcd's /health "health" field; over https with the test's client certificate.
async function health(client, tls) {
  if (!tls) return (await (await fetch(`${client}/health`)).json()).health;
  const options = { ca: readFileSync(tls.ca), cert: readFileSync(tls.clientCert), key: readFileSync(tls.clientKey), timeout: 2000 };
  return new Promise((resolve, reject) => {
    https.get(`${client}/health`, options, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve(JSON.parse(body).health));
    }).on("error", reject);
  });
}

export async function startEtcd({ tls } = {}) {
  const dir = makeTempDir("billing-etcd-");
  let client;
  let peer;
  // Ports picked free a moment before etcd binds them: another process may
  // take one first, and then the first start picks new ones.
  const pickPorts = async () => {
    client = `${tls ? "https" : "http"}://127.0.0.1:${await freePort()}`;
    peer = `http://127.0.0.1:${await freePort()}`;
  };
  await pickPorts();
  const tlsArgs = tls ? [`--cert-file=${tls.cert}`, `--key-file=${tls.key}`, `--trusted-ca-file=${tls.ca}`, "--client-cert-auth"] : [];
  let child;
  let log = "";
  const etcd = {
    get endpoint() {
      return client;
    },
    get log() {
      return log;
    },
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      child = spawn(ETCD, [`--name=e2e`, `--data-dir=${dir}/data`, `--listen-client-urls=${client}`, `--advertise-client-urls=${client}`, `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=e2e=${peer}`, ...tlsArgs], { stdio: ["ignore", "ignore", "pipe"] });
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (chunk) => {
        if (log.length < 200_000) log += chunk;
      });
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          if ((await health(client, tls)) === "true") return;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`etcd did not become healthy:\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop(signal = "SIGTERM") {
      if (!etcd.running) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(signal);
      await exited;
    },
    // The value of `key` (under the prefix) or undefined, through the JSON gateway.
    async get(key) {
      const answer = await fetch(`${client}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: Buffer.from(key).toString("base64") }) });
      const kvs = (await answer.json()).kvs ?? [];
      return kvs.length ? Buffer.from(kvs[0].value, "base64").toString() : undefined;
    },
    // {value, modRevision} of `key`, or undefined.
    async getKv(key) {
      const answer = await fetch(`${client}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: Buffer.from(key).toString("base64") }) });
      const kv = ((await answer.json()).kvs ?? [])[0];
      return kv && { value: Buffer.from(kv.value, "base64").toString(), modRevision: kv.mod_revision };
    },
    // Puts `value` at `key` only if its mod_revision is still `modRevision`; true if it did.
    async casPut(key, value, modRevision) {
      const b64 = (text) => Buffer.from(text).toString("base64");
      const body = { compare: [{ key: b64(key), target: "MOD", mod_revision: String(modRevision) }], success: [{ request_put: { key: b64(key), value: b64(value) } }] };
      const answer = await fetch(`${client}/v3/kv/txn`, { method: "POST", body: JSON.stringify(body) });
      return (await answer.json()).succeeded === true;
    },
    async cleanup() {
      await etcd.stop();
      removeTempDir(dir);
    },
  };
  for (let attempt = 1; ; attempt++) {
    try {
      await etcd.start();
      return etcd;
    } catch (error) {
      if (attempt >= 3 || !/address already in use/.test(log)) throw error;
      log = "";
      rmSync(`${dir}/data`, { recursive: true, force: true });
      await pickPorts();
    }
  }
}

// Plans billingd nodes n1..nN that find each other through `etcd`; start(i)
// starts node i (again, on the same data dir and cluster port).
export async function planEtcdCluster(count, etcd, { args = [] } = {}) {
  const nodes = [];
  for (let i = 0; i < count; i++) {
    nodes.push({ id: `n${i + 1}`, clusterPort: await freePort(), dataDir: makeTempDir("billingd-etcd-"), server: undefined });
  }
  const cluster = {
    nodes,
    async start(i, extra = []) {
      const node = nodes[i];
      node.server = await startServer({
        dataDir: node.dataDir,
        args: [`--node-id=${node.id}`, `--etcd-endpoints=${etcd.endpoint}`, `--cluster-address=127.0.0.1:${node.clusterPort}`, "--etcd-lease-ttl-seconds=2", "--etcd-poll-interval-ms=200", "--etcd-timeout-ms=1000", "--cluster-retry-interval-ms=200", "--cluster-peer-timeout-ms=3000", "--raw-retention-days=0", ...args, ...extra],
      });
      return node.server;
    },
    running() {
      return nodes.map((n, i) => [n, i]).filter(([n]) => n.server?.running);
    },
    async metrics(i) {
      return (await fetch(`${nodes[i].server.baseUrl}/metrics`)).text();
    },
    async gauge(i, kind) {
      const m = new RegExp(`^billing_cluster\\{kind="${kind}"\\} (\\S+)$`, "m").exec(await cluster.metrics(i));
      return m ? Number(m[1]) : undefined;
    },
    async gaugeSum(kind) {
      let sum = 0;
      for (const [, i] of cluster.running()) sum += (await cluster.gauge(i, kind)) ?? 0;
      return sum;
    },
    // Waits until every running node sees exactly `count` members.
    async waitMembers(count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const seen = [];
        for (const [, i] of cluster.running()) seen.push(await cluster.gauge(i, "etcd_members"));
        if (seen.every((n) => n === count)) return;
        if (Date.now() > deadline) throw new Error(`members seen ${seen}, expected ${count}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stopAll() {
      for (const node of nodes) if (node.server?.running) await node.server.stop();
    },
    cleanup() {
      for (const node of nodes) removeTempDir(node.dataDir);
    },
  };
  return cluster;
}
