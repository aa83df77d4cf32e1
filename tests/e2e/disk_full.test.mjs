// A full data volume, for real: billingd's data dir on a small tmpfs that the
// test fills up while it ingests 500-window batches, retrying each batch until
// it is acknowledged. billingd must stay up, refuse ingest with
// resource_exhausted naming the full disk, keep serving queries, streams and
// /metrics, report not ready on /readyz, restart on the still-full disk and
// serve reads, and resume ingest by itself once space is freed; in the end the
// ledger holds exactly what was acknowledged, each window once, and the
// rollup totals count each once. Mounting needs root (CI runs as root);
// otherwise the test is skipped and says why.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { batchRequest } from "./lib/batch.mjs";
import { Code, ConnectError, collectorClients, queryClient } from "./lib/clients.mjs";
import { rawRequest } from "./lib/http.mjs";
import { makeMetric, uniqueId } from "./lib/metrics.mjs";
import { dumpWindows, makeTempDir, removeTempDir, startServer } from "./lib/server.mjs";
import { assertStoredExactly } from "./lib/stored.mjs";
import { next } from "./lib/stream.mjs";

const MIB = 1 << 20;
const DAY_MS = 86_400_000;
const TMPFS_MIB = 20;
const LEFT_FREE = 3 * MIB; // what the filler leaves for ingest
const RESUME_FREE = 10 * MIB; // --resume-free-bytes: more than closing the WAL gives back, less than the filler frees
const WINDOWS_PER_BATCH = 500;
const MAX_BATCHES = 200; // 3 MiB hold far fewer batches; more means the disk never filled

function mountTmpfs() {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    return { skip: "mounting a tmpfs needs root (CI runs the e2e tests as root); skipped" };
  }
  const dir = makeTempDir("billingd-disk-full-");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${TMPFS_MIB}m,mode=0700`, "tmpfs", dir], { stdio: "pipe" });
  } catch (err) {
    removeTempDir(dir);
    return { skip: `cannot mount a ${TMPFS_MIB} MiB tmpfs (${String(err.stderr ?? err.message).trim()}); skipped` };
  }
  return { dir };
}

const mounted = mountTmpfs();
const servers = [];
after(async () => {
  for (const s of servers) await s.cleanup();
  if (mounted.dir) {
    try {
      execFileSync("umount", [mounted.dir], { stdio: "pipe" });
    } catch {
      execFileSync("umount", ["-l", mounted.dir], { stdio: "pipe" });
    }
    removeTempDir(mounted.dir);
  }
});

const freeBytes = (dir) => {
  const fs = statfsSync(dir);
  return fs.bavail * fs.bsize;
};

// Occupies all but `leave` bytes of the tmpfs with a file `name`.
function fillDisk(dir, leave, name = "filler") {
  const filler = path.join(dir, name);
  const size = freeBytes(dir) - leave;
  assert.ok(size > 0, `only ${freeBytes(dir)} bytes free before filling`);
  writeFileSync(filler, Buffer.alloc(size));
  return filler;
}

function batchOf(customerId, index) {
  const metrics = Array.from({ length: WINDOWS_PER_BATCH }, (_, vm) => makeMetric({ customerId, vmId: `vm-${vm}`, minutesAgo: index + 1 }));
  return batchRequest(metrics, { batchId: `${customerId}-batch-${index}` });
}

const sum = (metrics, field) => metrics.reduce((total, m) => total + m[field], 0n);

async function start(dataDir) {
  const s = await startServer({ dataDir, args: [`--resume-free-bytes=${RESUME_FREE}`] });
  servers.push(s);
  return s;
}

async function snapshotOf(baseUrl, customerId) {
  const controller = new AbortController();
  const stream = queryClient(baseUrl).streamLiveUsage({ customerId }, { signal: controller.signal })[Symbol.asyncIterator]();
  try {
    const first = await next(stream, "the live-usage snapshot");
    assert.equal(first.snapshot, true);
    return first.monthToDate;
  } finally {
    controller.abort();
  }
}

async function metricValue(baseUrl, name) {
  const res = await rawRequest(baseUrl, "/metrics", { method: "GET" });
  assert.equal(res.status, 200);
  const line = res.text.split("\n").find((l) => l.startsWith(`${name} `));
  assert.ok(line, `/metrics has no ${name}`);
  return Number(line.split(" ")[1]);
}

// While the disk is full: up, ingest refused naming the cause, reads served,
// not ready, the gauges set. Returns the month's totals as stored.
async function assertPausedButServing(s, customerId, pending, acknowledged) {
  assert.ok(s.running, `billingd died on the full disk:\n${s.stderr}`);
  const ingest = collectorClients(s.baseUrl).binary;
  for (let i = 0; i < 3; i++) {
    const err = await ingest.sendMetricsBatch(pending).then(
      () => assert.fail("a batch was acknowledged on the full disk"),
      (e) => e,
    );
    assert.ok(err instanceof ConnectError, String(err));
    assert.equal(err.code, Code.ResourceExhausted, err.message);
    assert.match(err.message, /data volume is full/);
  }
  const ready = await rawRequest(s.baseUrl, "/readyz", { method: "GET" });
  assert.equal(ready.status, 503);
  assert.match(ready.text, /not ready for ingest: .*(No space|no space)/);
  assert.equal(await metricValue(s.baseUrl, "billing_ledger_disk_full"), 1);
  assert.equal(await metricValue(s.baseUrl, "billing_ledger_writes_paused"), 1);

  // The failed batch was never acknowledged; it may have reached the WAL in
  // whole (a replay shows it) but never in part.
  const month = await snapshotOf(s.baseUrl, customerId);
  const stored = [acknowledged, acknowledged.concat(pending.metrics)];
  const match = stored.find((metrics) => month.windowCount === BigInt(metrics.length));
  assert.ok(match, `the stream shows ${month.windowCount} windows; acknowledged ${acknowledged.length}, pending ${pending.metrics.length}`);
  assert.equal(month.cpuTimeNanos, sum(match, "cpuTimeNanos"));
  const today = BigInt(Math.floor(Date.now() / DAY_MS) * 86_400); // windows lie in the last hours
  const usage = await queryClient(s.baseUrl).getCustomerUsage({
    customerId,
    startTime: { seconds: today - 86_400n, nanos: 0 },
    endTime: { seconds: today + 86_400n, nanos: 0 },
    granularity: 2, // day
  });
  assert.equal(usage.totals.cpuTimeNanos, month.cpuTimeNanos);
  return month;
}

test("a full disk pauses ingest without a crash, reads go on, ingest resumes once space is freed, nothing lost or counted twice", { skip: mounted.skip, timeout: 150_000 }, async () => {
  const dataDir = path.join(mounted.dir, "data");
  mkdirSync(dataDir);
  let s = await start(dataDir);
  const customerId = uniqueId("cust-full");
  const filler = fillDisk(mounted.dir, LEFT_FREE);

  // Ingest until the disk is full; every acknowledged batch is kept.
  const acknowledged = [];
  let pending;
  let ingest = collectorClients(s.baseUrl).binary;
  for (let b = 0; b < MAX_BATCHES && !pending; b++) {
    const batch = batchOf(customerId, b);
    try {
      const response = await ingest.sendMetricsBatch(batch);
      assert.equal(response.acceptedCount, WINDOWS_PER_BATCH, `batch ${b}`);
      acknowledged.push(...batch.metrics);
    } catch (err) {
      assert.ok(err instanceof ConnectError, String(err));
      assert.ok([Code.ResourceExhausted, Code.Unavailable].includes(err.code), err.message);
      assert.match(err.message, /full|space/i);
      pending = batch;
    }
  }
  assert.ok(pending, `${MAX_BATCHES} batches fit in ${LEFT_FREE} bytes: the disk never filled`);
  assert.ok(acknowledged.length > 0, "the disk was full before the first batch");
  const storedWhileFull = await assertPausedButServing(s, customerId, pending, acknowledged);

  // A restart on the still-full disk starts and serves the same reads. (The
  // last bytes are taken too: with a few free, the open's WAL flush could fit.)
  const stopped = await s.stop();
  assert.deepEqual(stopped, { code: 0, signal: null }, `stopping on a full disk:\n${s.stderr}`);
  const lastBytes = freeBytes(mounted.dir) > 0 ? fillDisk(mounted.dir, 0, "filler-2") : undefined;
  s = await start(dataDir);
  const afterRestart = await assertPausedButServing(s, customerId, pending, acknowledged);
  assert.deepEqual(afterRestart, storedWhileFull, "a restart changed what is stored");

  // Space is freed: ingest resumes by itself (no write needed to notice).
  rmSync(filler);
  if (lastBytes) rmSync(lastBytes);
  let ready;
  for (let i = 0; i < 100; i++) {
    ready = await rawRequest(s.baseUrl, "/readyz", { method: "GET" });
    if (ready.status === 200) break;
    await sleep(200);
  }
  assert.equal(ready.status, 200, `still not ready after space was freed: ${ready.text}\n${s.stderr}`);
  assert.equal(await metricValue(s.baseUrl, "billing_ledger_disk_full"), 0);
  assert.equal(await metricValue(s.baseUrl, "billing_ledger_writes_paused"), 0);

  // The retried batch counts once: all new, or all found from the WAL.
  ingest = collectorClients(s.baseUrl).binary;
  const retried = await ingest.sendMetricsBatch(pending);
  assert.ok(
    (retried.acceptedCount === WINDOWS_PER_BATCH && retried.duplicateCount === 0) || (retried.acceptedCount === 0 && retried.duplicateCount === WINDOWS_PER_BATCH),
    `retry: ${retried.acceptedCount} accepted, ${retried.duplicateCount} duplicate`,
  );
  acknowledged.push(...pending.metrics);
  const more = batchOf(customerId, MAX_BATCHES);
  assert.equal((await ingest.sendMetricsBatch(more)).acceptedCount, WINDOWS_PER_BATCH);
  acknowledged.push(...more.metrics);

  const month = await snapshotOf(s.baseUrl, customerId);
  assert.equal(month.windowCount, BigInt(acknowledged.length));
  assert.equal(month.cpuTimeNanos, sum(acknowledged, "cpuTimeNanos"));
  assert.equal(month.memoryBytesSeconds, sum(acknowledged, "memoryBytesSeconds"));
  assert.equal(month.diskWriteOps, sum(acknowledged, "diskWriteOps"));

  const { code, signal } = await s.stop();
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, s.stderr);
  assertStoredExactly(await dumpWindows(dataDir, customerId), acknowledged, "stored windows");
  assert.doesNotMatch(s.stderr, /Assertion|SIGABRT/);
});
