// A cluster of real billingd processes on loopback: each node has its own
// data dir, HTTP port (port 0, from its log) and CAF middleman port (chosen
// free here, since every node must know every peer's port before it starts).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import { makeTempDir, startServer } from "./server.mjs";

// A port that was free a moment ago, for a listener that must get the same
// port again when its node restarts. Chosen below the kernel's ephemeral
// range: a port from port 0 is in that range, and an outgoing connection
// (to etcd, to a peer) could take it while the node was down, so that the
// restarted node could not listen (seen in e2e.replication g).
export async function freePort() {
  const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
  for (let attempt = 0; low > 12_000 && attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (await canListen(port)) return port;
  }
  return listenOn(0);
}

function canListen(port) {
  return listenOn(port).then(
    () => true,
    () => false,
  );
}

function listenOn(port) {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(port, "127.0.0.1", () => {
      const bound = probe.address().port;
      probe.close(() => resolve(bound));
    });
  });
}

// The documented rendezvous weight: the first 8 bytes (big-endian) of
// SHA-256(be64(len(node_id)) | node_id | customer_id); the highest weight owns.
export function ownerOf(customerId, nodeIds) {
  let best;
  let bestWeight = -1n;
  for (const nodeId of nodeIds) {
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(Buffer.byteLength(nodeId)));
    const digest = createHash("sha256").update(length).update(nodeId).update(customerId).digest();
    const weight = digest.readBigUInt64BE(0);
    if (weight > bestWeight) {
      bestWeight = weight;
      best = nodeId;
    }
  }
  return best;
}

// Plans `count` nodes (ids n1..nN); start(i) starts node i (again, after a
// stop or kill, on the same data dir and ports). `args` go to every node,
// `nodeArgs(i)` to node i only.
export async function planCluster(count, { args = [], nodeArgs = () => [] } = {}) {
  const nodes = [];
  for (let i = 0; i < count; i++) {
    nodes.push({ id: `n${i + 1}`, clusterPort: await freePort(), dataDir: makeTempDir("billingd-cluster-"), server: undefined });
  }
  const membersOf = (indices) => indices.map((j) => `${nodes[j].id}@127.0.0.1:${nodes[j].clusterPort}`).join(",");
  const everyNode = nodes.map((_, j) => j);
  const cluster = {
    nodes,
    nodeIds: nodes.map((n) => n.id),
    // `members`: the indices of the nodes in this node's member list (all by
    // default), to run a smaller cluster first and grow it later.
    async start(i, { members = everyNode } = {}) {
      const node = nodes[i];
      node.server = await startServer({
        dataDir: node.dataDir,
        args: [`--node-id=${node.id}`, `--cluster-members=${membersOf(members)}`, "--cluster-retry-interval-ms=200", "--cluster-peer-timeout-ms=3000", ...args, ...nodeArgs(i)],
      });
      return node.server;
    },
    async startAll({ members = everyNode } = {}) {
      for (const i of members) await cluster.start(i, { members });
    },
    async stopAll() {
      for (const node of nodes) if (node.server?.running) await node.server.stop();
    },
    // The sum of a billing_cluster gauge over the running nodes.
    async gaugeSum(kind) {
      let sum = 0;
      for (const [i, node] of nodes.entries()) if (node.server?.running) sum += (await cluster.gauge(i, kind)) ?? 0;
      return sum;
    },
    // The node's /metrics value of billing_cluster{kind="KIND"}.
    async gauge(i, kind) {
      const text = await (await fetch(`${nodes[i].server.baseUrl}/metrics`)).text();
      const m = new RegExp(`^billing_cluster\\{kind="${kind}"\\} (\\S+)$`, "m").exec(text);
      return m ? Number(m[1]) : undefined;
    },
  };
  return cluster;
}
