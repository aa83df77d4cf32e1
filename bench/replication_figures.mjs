// The replication figures of README.md (run it through bench/replication_figures.sh):
//  - ingest into a 3-node etcd cluster at --replication-factor=1 and =3,
//    alternately, RUNS runs each (default 3): one billing-loadgen per gateway
//    with 2 keep-alive connections, batches of BATCH_SIZE, every loadgen
//    verifying its totals through its gateway afterwards; the sum of their
//    metrics/s and the slowest gateway's p99 batch (ack) latency, medians;
//  - failover at R=3 with the default lease (5 s) and poll (500 ms): under a
//    light multi-region load, SIGKILL the node leading the most customers and
//    time until every one of them answers GetCustomerUsage and has a new
//    window acknowledged again, FAILOVER_RUNS runs (default 3), median.
// Every measurement gets a fresh etcd and fresh data dirs. SMOKE=1: one small
// run of each, to keep the script working (CTest bench.replication_smoke).
import { execFile } from "node:child_process";
import path from "node:path";
import { startEtcd } from "../tests/e2e/lib/etcd.mjs";
import { BILLINGD } from "../tests/e2e/lib/paths.mjs";
import { uniqueId } from "../tests/e2e/lib/metrics.mjs";
import { describeStats, expectExactTotals, Oracle, replicatedCluster, sleep, startWorkload, timeUntilServed } from "../tests/e2e/lib/replication.mjs";

const smoke = process.env.SMOKE === "1";
const runs = Number(process.env.RUNS ?? (smoke ? 1 : 3));
const failoverRuns = Number(process.env.FAILOVER_RUNS ?? (smoke ? 1 : 3));
const batchSize = Number(process.env.BATCH_SIZE ?? (smoke ? 200 : 1000));
const windowsPerConnection = Number(process.env.WINDOWS_PER_CONNECTION ?? (smoke ? 1000 : 20000));
const batches = Math.ceil(windowsPerConnection / batchSize);
const loadgen = process.env.LOADGEN ?? path.join(path.dirname(BILLINGD), "bench", "billing-loadgen");

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];
const progress = (text) => process.stderr.write(`${text}\n`);

// A fresh etcd and 3 nodes at `factor`, settled; `body(cluster)`; then all gone.
async function withCluster(factor, body) {
  const etcd = await startEtcd();
  const cluster = await replicatedCluster(etcd, factor);
  try {
    await cluster.startAll();
    await cluster.waitPlacementStable();
    return await body(cluster);
  } finally {
    await cluster.stopEverything();
    cluster.cleanup();
    await etcd.cleanup();
  }
}

function runLoadgen(args) {
  return new Promise((resolve, reject) => {
    execFile(loadgen, args, { maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${loadgen} ${args.join(" ")}: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

// One ingest run: {metricsPerSecond (sum over gateways), p99 (slowest gateway)}.
async function ingestRun(run, factor) {
  return withCluster(factor, async (cluster) => {
    const outputs = await Promise.all(
      cluster.nodes.map((node, g) =>
        runLoadgen([`--target=127.0.0.1:${node.server.port}`, "--connections=2", `--batches=${batches}`, `--batch-size=${batchSize}`, "--vms=100", "--customers=200", `--run-tag=${uniqueId(`r${run}-R${factor}-g${g}`)}`]),
      ),
    );
    let metricsPerSecond = 0;
    let p99 = 0;
    for (const out of outputs) {
      if (!/^verify ok$/m.test(out)) throw new Error(`loadgen did not verify:\n${out}`);
      metricsPerSecond += Number(/^metrics_per_second (\S+)$/m.exec(out)[1]);
      p99 = Math.max(p99, Number(/^batch_latency_ms p50 \S+ p99 (\S+)/m.exec(out)[1]));
    }
    progress(`run ${run} R=${factor}: ${Math.round(metricsPerSecond)} metrics/s, p99 ${p99} ms`);
    return { metricsPerSecond, p99 };
  });
}

// One failover: ms until the killed leader's customers are served again.
async function failoverRun(run) {
  return withCluster(3, async (cluster) => {
    const oracle = new Oracle(Array.from({ length: 12 }, (_, i) => uniqueId(`failover-${run}-${i}`)));
    await expectExactTotals(cluster, oracle, "before the kill", { timeoutMs: 30_000 });
    const load = startWorkload(cluster, oracle, { batchSize: 4, gapMs: 50 });
    await sleep(2_000);
    const { leader, customers } = await cluster.busiestLeader(oracle.customers);
    await cluster.kill(leader);
    const ms = await timeUntilServed(cluster, oracle, customers);
    const stats = await load.stop();
    await expectExactTotals(cluster, oracle, "after the failover");
    progress(`failover ${run}: n${leader + 1} (leader of ${customers.length}) killed, served again after ${ms} ms; ${describeStats(stats)}`);
    return ms;
  });
}

const results = { 1: [], 3: [] };
for (let run = 1; run <= runs; run++) {
  for (const factor of [1, 3]) results[factor].push(await ingestRun(run, factor));
}
const failovers = [];
for (let run = 1; run <= failoverRuns; run++) failovers.push(await failoverRun(run));

const r1 = median(results[1].map((r) => r.metricsPerSecond));
const r3 = median(results[3].map((r) => r.metricsPerSecond));
console.log(`batch_size ${batchSize} connections 6 (2 per gateway) runs ${runs}`);
console.log(`r1_metrics_per_second_median ${Math.round(r1)}`);
console.log(`r3_metrics_per_second_median ${Math.round(r3)}`);
console.log(`r3_to_r1_ratio ${(r3 / r1).toFixed(2)}`);
console.log(`r1_batch_latency_ms_p99_median ${median(results[1].map((r) => r.p99))}`);
console.log(`r3_batch_latency_ms_p99_median ${median(results[3].map((r) => r.p99))}`);
console.log(`failover_ms_median ${median(failovers)} runs ${failovers.join(" ")}`);
process.exit(0);
