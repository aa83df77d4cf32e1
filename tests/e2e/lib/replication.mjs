// The harness of the replication tests (issue 16): a 3-node etcd cluster with
// R replicas per shard, a multi-region ingest workload through every gateway
// whose client retries until acknowledged, an oracle of every acknowledged
// window, exact totals checks, and the comparison of the replicas'
// --dump-replicated output once the nodes are stopped.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { batchRequest } from "./batch.mjs";
import { Code, ConnectError, collectorClients, queryClient } from "./clients.mjs";
import { planEtcdCluster } from "./etcd.mjs";
import { ANCHOR_MS, identityKey, makeMetric, ts, uniqueId } from "./metrics.mjs";
import { runBillingd } from "./server.mjs";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const REGIONS = ["us-east-1", "eu-west-1", "ap-south-1"];
const DAY_MS = 86_400_000;
const WINDOW_NANOS = 60_000_000_000n;
// A write waits up to --replication-ack-timeout-ms (5 s) for a majority; the
// client gives it a little longer before it retries.
const WRITE_TIMEOUT_MS = 7_000;
const QUERY_TIMEOUT_MS = 3_000;
// Summed fields of UsageTotals whose exact value is the *_decimal twin.
const SUMMED = ["cpuTimeNanos", "memoryBytesSeconds", "diskReadBytes", "diskWriteBytes", "diskReadOps", "diskWriteOps", "networkRxBytes", "networkTxBytes"];

// The documented shard of a customer: SHA-256("shard" | id), first 8 bytes big-endian, mod count.
export const shardOf = (customerId, count) => Number(createHash("sha256").update("shard").update(customerId).digest().readBigUInt64BE(0) % BigInt(count));

// Every window whose ingest was acknowledged (accepted, or a duplicate of an
// earlier attempt), by identity; the totals each customer must report.
export class Oracle {
  constructor(customers) {
    this.customers = customers;
    this.windows = new Map();
  }
  acknowledge(metrics) {
    for (const m of metrics) this.windows.set(identityKey(m), m);
  }
  get size() {
    return this.windows.size;
  }
  expected(customerId) {
    const totals = Object.fromEntries(SUMMED.map((f) => [f, 0n]));
    let windowCount = 0n;
    let memoryBytesPeak = 0n;
    for (const m of this.windows.values()) {
      if (m.customerId !== customerId) continue;
      for (const f of SUMMED) totals[f] += m[f];
      windowCount += 1n;
      if (m.memoryBytesPeak > memoryBytesPeak) memoryBytesPeak = m.memoryBytesPeak;
    }
    return { ...totals, vmActiveNanos: windowCount * WINDOW_NANOS, windowCount, memoryBytesPeak };
  }
}

// What differs between `totals` (a UsageTotals) and `want` (Oracle.expected);
// "" when nothing. Names the window count and CPU time first.
export function totalsDiff(totals, want) {
  const wrong = [];
  for (const [f, value] of Object.entries(want)) {
    const got = f === "memoryBytesPeak" ? totals.memoryBytesPeak ?? 0n : BigInt(totals[`${f}Decimal`] || "0");
    if (got !== value) wrong.push(`${f} ${got} != ${value}`);
  }
  const first = wrong.filter((w) => /^(windowCount|cpuTimeNanos) /.test(w));
  const others = wrong.length - first.length;
  return [...first, ...(others > 0 ? [`${others} other fields`] : [])].join(", ");
}

// A 3-node etcd cluster, `factor` replicas per shard, default lease and poll
// settings (the failover bound is for those). Nodes are started, killed,
// paused and wiped by index; `usable(i)`: running and not paused.
export async function replicatedCluster(etcd, factor, count = 3) {
  const cluster = await planEtcdCluster(count, etcd, {
    args: [`--replication-factor=${factor}`, "--etcd-lease-ttl-seconds=5", "--etcd-poll-interval-ms=500"],
  });
  const clients = new Map();
  const startNode = cluster.start;
  const viaNode = (i, kind, make) => {
    const key = `${kind} ${cluster.nodes[i].server.baseUrl}`;
    if (!clients.has(key)) clients.set(key, make(cluster.nodes[i].server.baseUrl));
    return clients.get(key);
  };
  Object.assign(cluster, {
    usable: (i) => cluster.nodes[i].server?.running === true && !cluster.nodes[i].paused,
    usableIndices: () => cluster.nodes.map((_, i) => i).filter((i) => cluster.usable(i)),
    collector: (i) => viaNode(i, "collector", (url) => collectorClients(url, { defaultTimeoutMs: WRITE_TIMEOUT_MS }).binary),
    query: (i) => viaNode(i, "query", (url) => queryClient(url, { defaultTimeoutMs: QUERY_TIMEOUT_MS })),
    async startAll() {
      await Promise.all(cluster.nodes.map((_, i) => cluster.start(i)));
      await cluster.waitMembers(count, 30_000);
    },
    kill: (i) => cluster.nodes[i].server.kill(),
    // Writes every node's stderr (across restarts) to PREFIX.<node>.log.
    saveLogs(prefix) {
      for (const node of cluster.nodes) writeFileSync(`${prefix}.${node.id}.log`, [...(node.logs ?? []), node.server?.stderr ?? ""].join(""));
    },
    // Every node's stderr since the cluster started, across restarts (for REPLICATION_DUMPS_DIR).
    async start(i, extra) {
      const node = cluster.nodes[i];
      if (node.server) (node.logs ??= []).push(node.server.stderr);
      const server = await startNode(i, extra);
      return server;
    },
    pause(i) {
      cluster.nodes[i].server.child.kill("SIGSTOP");
      cluster.nodes[i].paused = true;
    },
    resume(i) {
      cluster.nodes[i].server.child.kill("SIGCONT");
      cluster.nodes[i].paused = false;
    },
    // Its disk lost: an empty data dir at the same path.
    wipe(i) {
      rmSync(cluster.nodes[i].dataDir, { recursive: true, force: true });
      mkdirSync(cluster.nodes[i].dataDir);
    },
    async stopEverything() {
      for (const [i, node] of cluster.nodes.entries()) if (node.paused && node.server?.running) cluster.resume(i);
      await cluster.stopAll();
    },
    // The node (index) leading `customerId`'s shard according to etcd, its
    // epoch, and how many replicas the shard has.
    async leaderOf(customerId) {
      const count = Number(await etcd.get("/billing/shard_count"));
      const record = JSON.parse((await etcd.get(`/billing/shards/${String(shardOf(customerId, count)).padStart(5, "0")}`)) ?? "null");
      const leader = record?.leader ?? record?.replicas?.[0];
      return { index: cluster.nodes.findIndex((n) => n.id === leader), epoch: record ? BigInt(record.epoch) : undefined, replicas: record?.replicas?.length ?? 0 };
    },
    async leadersOf(customers) {
      const leaders = new Map();
      for (const c of customers) leaders.set(c, await cluster.leaderOf(c));
      return leaders;
    },
    // {leader: index of the node leading the most `customers` (among `among`),
    // customers: those, epochs: customer -> epoch}, from one reading of etcd.
    async busiestLeader(customers, among = cluster.usableIndices()) {
      const leaders = await cluster.leadersOf(customers);
      const led = new Map(among.map((i) => [i, []]));
      for (const [c, { index }] of leaders) led.get(index)?.push(c);
      const [leader, theirs] = [...led.entries()].sort((a, b) => b[1].length - a[1].length)[0];
      return { leader, customers: theirs, epochs: new Map(theirs.map((c) => [c, leaders.get(c).epoch])) };
    },
    // Every shard record in etcd: [{replicas, epoch, ...}], in shard order.
    async shards() {
      const b64 = (text) => Buffer.from(text).toString("base64");
      const answer = await fetch(`${etcd.endpoint}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: b64("/billing/shards/"), range_end: b64("/billing/shards0") }) });
      return ((await answer.json()).kvs ?? []).map((kv) => JSON.parse(Buffer.from(kv.value, "base64").toString()));
    },
    // Waits until every shard has min(factor, nodes) replicas and nothing
    // changed for a second (nodes started at once settle first).
    async waitPlacementStable(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      const want = Math.min(factor, count);
      let last = "";
      let since = Date.now();
      for (;;) {
        const shards = await cluster.shards();
        const now = JSON.stringify(shards);
        const expected = Number((await etcd.get("/billing/shard_count")) ?? 0);
        const complete = expected > 0 && shards.length === expected && shards.every((s) => s.replicas?.length === want);
        if (now !== last || !complete) since = Date.now();
        else if (Date.now() - since >= 1_000) return;
        last = now;
        assert.ok(Date.now() < deadline, `the placement did not settle in ${timeoutMs} ms (${shards.length}/${expected} shards, e.g. ${JSON.stringify(shards[0])})`);
        await sleep(250);
      }
    },
  });
  return cluster;
}

// Ingest through every gateway: writer w sends batches of windows of several
// customers in region REGIONS[w % 3] through node w (the next usable one while
// it is down or paused), retrying every failure (unavailable, a node gone
// mid-call, a timeout) until the batch is acknowledged; then the oracle has it.
export function startWorkload(cluster, oracle, { writers = cluster.nodes.length, batchSize = 6, gapMs = 20, giveUpMs = 60_000 } = {}) {
  let running = true;
  let abandoned = false;
  const stats = { batches: 0, retries: 0, errors: new Map(), slowestAckMs: 0, unacknowledged: [] };
  const customers = oracle.customers;
  const writer = async (w) => {
    const region = REGIONS[w % REGIONS.length];
    for (let seq = 0; running; seq++) {
      const metrics = [];
      for (let k = 0; k < batchSize; k++) {
        const customerId = customers[(w * 7 + seq * batchSize + k) % customers.length];
        metrics.push(makeMetric({ customerId, vmId: `vm-w${w}-${seq}-${k}`, region, minutesAgo: 2 + (seq % 50) }));
      }
      await sendUntilAcknowledged(cluster, oracle, metrics, { region, preferred: w, stats, giveUpMs, abandoned: () => abandoned });
      await sleep(gapMs);
    }
  };
  const done = Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
  return {
    stats,
    async stop() {
      running = false;
      await done;
      return stats;
    },
    // For a test that failed: stops at once, even mid-retry.
    async abandon() {
      running = false;
      abandoned = true;
      await done.catch(() => {});
    },
  };
}

// Sends one batch until acknowledged (through `preferred`, else the next
// usable node; `only` pins it to one node); records it in `oracle`. A batch
// never acknowledged within giveUpMs is listed in stats.unacknowledged (its
// windows may or may not be stored: the oracle cannot say).
export async function sendUntilAcknowledged(cluster, oracle, metrics, { region, preferred = 0, only, stats, giveUpMs = 60_000, abandoned = () => false }) {
  const request = batchRequest(metrics, { region, batchId: uniqueId("batch-repl") });
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    const usable = only === undefined ? cluster.usableIndices() : [only].filter((i) => cluster.usable(i));
    // The preferred gateway first, then the others in turn.
    const i = usable[(Math.max(0, usable.indexOf(preferred)) + attempt) % Math.max(1, usable.length)];
    if (i !== undefined) {
      try {
        const answer = await cluster.collector(i).sendMetricsBatch(request);
        if (answer.acceptedCount + answer.duplicateCount === metrics.length) {
          oracle.acknowledge(metrics);
          if (stats) {
            stats.batches += 1;
            stats.slowestAckMs = Math.max(stats.slowestAckMs, Date.now() - started);
          }
          return { node: i, ms: Date.now() - started, attempts: attempt + 1 };
        }
        assert.fail(`batch ${request.batchId}: ${answer.rejectedCount} windows rejected: ${JSON.stringify(answer.results.map((r) => r.message))}`);
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        if (stats) {
          const kind = error instanceof ConnectError ? Code[error.code] : error.message.slice(0, 60);
          stats.errors.set(kind, (stats.errors.get(kind) ?? 0) + 1);
          stats.retries += 1;
        }
      }
    }
    if (abandoned()) return undefined;
    if (Date.now() - started > giveUpMs) {
      stats?.unacknowledged.push(request.batchId);
      return undefined;
    }
    await sleep(100);
  }
}

export async function totalsVia(cluster, i, customerId) {
  const startMs = Math.floor(ANCHOR_MS / DAY_MS) * DAY_MS - DAY_MS;
  const usage = await cluster.query(i).getCustomerUsage({ customerId, startTime: ts(startMs), endTime: ts(startMs + 2 * DAY_MS), granularity: 2 });
  return usage.totals ?? {};
}

// Every customer's totals, asked through every usable gateway, equal the
// oracle exactly. Errors (a shard still failing over) are retried until
// `timeoutMs`; so are wrong answers, but each is reported in `notes`.
export async function expectExactTotals(cluster, oracle, label, { timeoutMs = 20_000, notes = [] } = {}) {
  const deadline = Date.now() + timeoutMs;
  let pending = oracle.customers.flatMap((c) => cluster.usableIndices().map((i) => [c, i]));
  const noted = new Set();
  for (;;) {
    const still = [];
    const wrong = [];
    for (const [customerId, i] of pending) {
      try {
        const diff = totalsDiff(await totalsVia(cluster, i, customerId), oracle.expected(customerId));
        if (diff !== "") {
          wrong.push(`${customerId} via n${i + 1}: ${diff}`);
          still.push([customerId, i]);
          // A wrong answer after every write was acknowledged: reported once per pair.
          if (!noted.has(`${customerId} ${i}`)) notes.push(`${label}: first answer wrong: ${customerId} via n${i + 1}: ${diff}`);
          noted.add(`${customerId} ${i}`);
        }
      } catch (error) {
        still.push([customerId, i]);
        wrong.push(`${customerId} via n${i + 1}: ${error.message}`);
      }
    }
    if (still.length === 0) return;
    if (Date.now() > deadline) assert.fail(`${label}: ${still.length} (customer, gateway) pairs off after ${timeoutMs} ms, e.g. ${wrong.slice(0, 4).join("; ")}`);
    pending = still;
    await sleep(250);
  }
}

// How long until every customer in `customers` answers GetCustomerUsage
// through a usable gateway and has a new window acknowledged; starts now.
export async function timeUntilServed(cluster, oracle, customers, { timeoutMs = 30_000 } = {}) {
  const started = Date.now();
  const one = async (customerId, n) => {
    // One probe window, re-sent until acknowledged (a failed attempt may be stored).
    const probe = makeMetric({ customerId, vmId: `vm-probe-${uniqueId("p")}-${n}`, region: REGIONS[n % 3], minutesAgo: 3 });
    let queried = false;
    let ingested = false;
    for (let attempt = 0; !(queried && ingested); attempt++) {
      assert.ok(Date.now() - started < timeoutMs, `${customerId} did not answer within ${timeoutMs} ms (query ${queried}, ingest ${ingested})`);
      const usable = cluster.usableIndices();
      const i = usable[attempt % usable.length];
      if (!queried) {
        try {
          await totalsVia(cluster, i, customerId);
          queried = true;
        } catch {
          // still failing over
        }
      }
      if (!ingested) {
        const sent = await sendUntilAcknowledged(cluster, oracle, [probe], { region: probe.region, preferred: i, giveUpMs: 0 });
        ingested = sent !== undefined;
      }
      if (!(queried && ingested)) await sleep(100);
    }
    return Date.now() - started;
  };
  const each = await Promise.all(customers.map((c, n) => one(c, n)));
  return Math.max(...each);
}

// Waits until the nodes' replication gauges that look like a lag (kinds
// naming lag, behind, pending, catch or recovering) are all 0, bounded;
// without such gauges, a fixed settle time.
export async function settleReplication(cluster, { timeoutMs = 15_000, fixedMs = 3_000, minMs = 2_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  await sleep(minMs);
  for (;;) {
    let lagging = 0;
    let gauges = 0;
    for (const i of cluster.usableIndices()) {
      try {
        const text = await cluster.metrics(i);
        for (const m of text.matchAll(/^(billing_\w+)\{kind="([^"]*)"\} (\S+)$/gm)) {
          if (!`${m[1]} ${m[2]}`.includes("replication") || !/lag|behind|pending|catch|recovering/.test(m[2])) continue;
          gauges += 1;
          if (Number(m[3]) !== 0) lagging += 1;
        }
      } catch {
        lagging += 1;
      }
    }
    if (gauges === 0) return sleep(fixedMs - minMs);
    if (lagging === 0 || Date.now() > deadline) return;
    await sleep(200);
  }
}

// The replicated families of a stopped node as text (billingd --dump-replicated).
export async function dumpReplicated(dataDir) {
  return (await runBillingd([`--data-dir=${dataDir}`, "--dump-replicated"], { timeoutMs: 60_000 })).stdout;
}

// A record's key for a report: its customer (the length-prefixed first part)
// and, for audit entries, the recording time and the store's sequence number.
function describeKey(family, hex) {
  const key = Buffer.from(hex, "hex");
  const length = key[0] ?? 0;
  if (length === 0 || key.length < 1 + length) return hex.slice(0, 48);
  const customer = key.subarray(1, 1 + length).toString();
  if (family !== "audit" || key.length !== 17 + length) return `${customer} ${hex.slice(2 * (1 + length), 2 * (1 + length) + 32)}…`;
  const recordedNs = key.readBigUInt64BE(1 + length) ^ (1n << 63n);
  const at = new Date(Number(recordedNs / 1_000_000n)).toISOString();
  return `${customer} recorded ${at} sequence ${key.readBigUInt64BE(9 + length)}`;
}

// "" when every dump equals the first; else, per node, how its records differ
// from the first node's, by family (missing, extra, different values) with examples.
export function dumpsDiff(dumps) {
  const parse = (text) => new Map(text.split("\n").filter(Boolean).map((line) => {
    const [family, key, value] = line.split("\t");
    return [`${family}\t${key}`, value];
  }));
  const [first, ...rest] = dumps.map((d) => ({ ...d, records: parse(d.text) }));
  const report = [];
  for (const other of rest) {
    if (other.text === first.text) continue;
    const byFamily = new Map();
    const note = (id, kind) => {
      const [family, key] = id.split("\t");
      const entry = byFamily.get(family) ?? { missing: 0, extra: 0, different: 0, examples: [] };
      entry[kind] += 1;
      if (entry.examples.length < 2) entry.examples.push(`${kind} ${describeKey(family, key)}`);
      byFamily.set(family, entry);
    };
    for (const [id, value] of first.records) {
      if (!other.records.has(id)) note(id, "missing");
      else if (other.records.get(id) !== value) note(id, "different");
    }
    for (const id of other.records.keys()) if (!first.records.has(id)) note(id, "extra");
    const families = [...byFamily.entries()].map(([f, e]) => `${f}: ${e.missing} missing, ${e.extra} extra, ${e.different} different (${e.examples.join("; ")})`);
    report.push(`${other.node} vs ${first.node} (${other.records.size} vs ${first.records.size} records): ${families.join(" | ")}`);
  }
  return report.join("\n");
}

// The end of every scenario: exact totals through every gateway, then the
// nodes stopped and their replicated families compared; a difference after
// the settle time gets up to two more chances (restart, settle, stop), each
// reported in `notes`. Every replica holds every acknowledged window once and
// its audit chain verifies.
export async function expectConvergedReplicas(cluster, oracle, label, { notes = [], factor = 3 } = {}) {
  await expectExactTotals(cluster, oracle, label, { notes });
  let diff = "";
  let dumps = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    await settleReplication(cluster);
    await cluster.stopEverything();
    dumps = [];
    for (const node of cluster.nodes) dumps.push({ node: node.id, text: await dumpReplicated(node.dataDir) });
    diff = dumpsDiff(dumps);
    // To look into a difference: REPLICATION_DUMPS_DIR keeps every dump that differs.
    if (diff !== "" && process.env.REPLICATION_DUMPS_DIR) {
      const prefix = path.join(process.env.REPLICATION_DUMPS_DIR, `${label.replace(/\W+/g, "_")}.${attempt}`);
      for (const d of dumps) writeFileSync(`${prefix}.${d.node}.tsv`, d.text);
      cluster.saveLogs(prefix);
    }
    if (factor < cluster.nodes.length) {
      notes.push(`${label}: R=${factor}, replicas not compared; they differ: ${diff.slice(0, 400)}`);
      break;
    }
    if (diff === "") break;
    notes.push(`${label}: replicas differ at stop ${attempt}:\n${diff}`);
    if (attempt < 3) {
      await cluster.startAll();
      await sleep(5_000);
    }
  }
  for (const node of cluster.nodes) await runBillingd([`--data-dir=${node.dataDir}`, "--verify-audit"]);
  if (factor < cluster.nodes.length) return;
  assert.equal(diff, "", `${label}: the replicas' --dump-replicated differ`);
  assert.equal(dumpedWindows(dumps[0].text).length, oracle.size, `${label}: stored windows vs acknowledged windows`);
}

// The window lines of a --dump-replicated output.
export function dumpedWindows(text) {
  return text.split("\n").filter((line) => line.startsWith("windows\t"));
}

// A short line about a workload's statistics for the test log.
export function describeStats(stats) {
  const errors = [...stats.errors.entries()].map(([k, n]) => `${k} x${n}`).join(", ");
  return `${stats.batches} batches acknowledged, ${stats.retries} retries (${errors || "none"}), slowest ack ${stats.slowestAckMs} ms`;
}
