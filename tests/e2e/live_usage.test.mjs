// StreamLiveUsage from the real billingd with connect-node (JSON and binary):
// a snapshot of this month, then one update per acknowledged ingest, in
// order; a slow subscriber never holds up ingest and loses nothing (updates
// coalesce, deltas still add up); disconnects are cleaned up; shutdown ends
// the stream with unavailable. Expected totals are computed here from what
// the test sent.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { collectorClients, Code, expectConnectError, queryClient } from "./lib/clients.mjs";
import { batchRequest } from "./lib/batch.mjs";
import { makeMetric, MINUTE_MS, uniqueId } from "./lib/metrics.mjs";
import { startServer } from "./lib/server.mjs";
import { next } from "./lib/stream.mjs";

const WAIT_MS = 10_000;
const servers = [];
after(async () => {
  for (const s of servers) await s.cleanup();
});

async function server(args = []) {
  const s = await startServer({ args });
  servers.push(s);
  return s;
}

const tsMs = (t) => Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);
function monthStartMs() {
  const d = new Date();
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}
// Whole 1-minute windows never cross a month boundary: a window counts in
// this month's totals exactly when it starts in it.
const inThisMonth = (m) => tsMs(m.windowStart) >= monthStartMs();
const sum = (metrics, field) => metrics.reduce((total, m) => total + m[field], 0n);

function subscribe(baseUrl, customerId, { binary = true, signal } = {}) {
  return queryClient(baseUrl, { binary }).streamLiveUsage({ customerId }, { signal })[Symbol.asyncIterator]();
}

let vmCounter = 0;
function windows(customerId, count) {
  vmCounter += 1;
  return Array.from({ length: count }, (_, i) => makeMetric({ customerId, vmId: `vm-${vmCounter}`, minutesAgo: 2 + i }));
}

test("a snapshot, then one update per acknowledged ingest, in order, to every subscriber", async () => {
  const s = await server();
  const ingest = collectorClients(s.baseUrl).binary;
  const customerId = uniqueId("cust-live");
  const before = windows(customerId, 2);
  await ingest.sendMetricsBatch(batchRequest(before));

  const subscribers = [subscribe(s.baseUrl, customerId, { binary: false }), subscribe(s.baseUrl, customerId, { binary: true })];
  const snapshots = [];
  for (const sub of subscribers) snapshots.push(await next(sub, "the snapshot"));
  for (const snap of snapshots) {
    assert.equal(snap.snapshot, true);
    assert.equal(snap.customerId, customerId);
    assert.equal(snap.monthToDate.cpuTimeNanos, sum(before.filter(inThisMonth), "cpuTimeNanos"));
    assert.equal(snap.monthToDate.windowCount, BigInt(before.filter(inThisMonth).length));
  }

  let expectedMonth = before.filter(inThisMonth);
  const a = windows(customerId, 3);
  const b = windows(customerId, 1);
  const c = windows(customerId, 2);
  const steps = [
    [a, 1n],
    [b, 2n],
  ];
  for (const [batch, offset] of steps) {
    assert.equal((await ingest.sendMetricsBatch(batchRequest(batch))).acceptedCount, batch.length);
    expectedMonth = expectedMonth.concat(batch.filter(inThisMonth));
    for (const [i, sub] of subscribers.entries()) {
      const update = await next(sub, `the update for a batch of ${batch.length}`);
      assert.equal(update.snapshot, false);
      assert.equal(update.sequence, snapshots[i].sequence + offset);
      assert.equal(update.delta.cpuTimeNanos, sum(batch, "cpuTimeNanos"));
      assert.equal(update.delta.networkTxBytes, sum(batch, "networkTxBytes"));
      assert.equal(update.delta.windowCount, BigInt(batch.length));
      assert.equal(update.monthToDate.cpuTimeNanos, sum(expectedMonth, "cpuTimeNanos"));
      assert.equal(update.monthToDate.memoryBytesSeconds, sum(expectedMonth, "memoryBytesSeconds"));
    }
  }
  // Re-sending `a` stores nothing, so it sends no update: the next one is c's.
  assert.equal((await ingest.sendMetricsBatch(batchRequest(a))).duplicateCount, a.length);
  await ingest.sendMetricsBatch(batchRequest(c));
  for (const [i, sub] of subscribers.entries()) {
    const update = await next(sub, "the update for c");
    assert.equal(update.sequence, snapshots[i].sequence + 3n);
    assert.equal(update.delta.cpuTimeNanos, sum(c, "cpuTimeNanos"));
  }
  for (const sub of subscribers) await sub.return?.();
});

test("a slow subscriber never holds up ingest and loses nothing: deltas add up", async () => {
  // A one-byte stream buffer: whatever is not written yet makes the next
  // update wait and coalesce.
  const s = await server(["--max-stream-buffer-bytes=1"]);
  const ingest = collectorClients(s.baseUrl).binary;
  const customerId = uniqueId("cust-slow");
  const sub = subscribe(s.baseUrl, customerId);
  const snapshot = await next(sub, "the snapshot");

  // The subscriber reads nothing while 40 batches are acknowledged.
  const batches = Array.from({ length: 40 }, () => windows(customerId, 1));
  for (let i = 0; i < batches.length; i += 8) {
    const responses = await Promise.all(batches.slice(i, i + 8).map((batch) => ingest.sendMetricsBatch(batchRequest(batch))));
    for (const r of responses) assert.equal(r.acceptedCount, 1);
  }
  const all = batches.flat();
  const expectedCpu = sum(all, "cpuTimeNanos");
  let receivedCpu = 0n;
  let lastSequence = snapshot.sequence;
  let updates = 0;
  let last;
  while (receivedCpu < expectedCpu) {
    last = await next(sub, "the remaining updates");
    assert.ok(last.sequence > lastSequence, `sequence ${last.sequence} after ${lastSequence}`);
    lastSequence = last.sequence;
    receivedCpu += last.delta.cpuTimeNanos;
    updates += 1;
  }
  assert.equal(receivedCpu, expectedCpu, "the deltas add up to exactly what was ingested");
  assert.equal(last.sequence, snapshot.sequence + 40n, "the last update carries the 40th ingest's sequence");
  assert.equal(last.monthToDate.cpuTimeNanos, sum(all.filter(inThisMonth), "cpuTimeNanos"));
  assert.ok(updates <= 40);
  await sub.return?.();
});

async function subscriberGauge(s) {
  const text = await (await fetch(`${s.baseUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("billing_stream_subscribers "));
  return Number(line?.split(" ")[1]);
}

test("subscribers that leave are cleaned up; the others keep receiving", async () => {
  const s = await server();
  const customerId = uniqueId("cust-leave");
  const controllers = [new AbortController(), new AbortController(), new AbortController()];
  const subs = controllers.map((c) => subscribe(s.baseUrl, customerId, { signal: c.signal }));
  for (const sub of subs) await next(sub, "the snapshot");
  assert.equal(await subscriberGauge(s), 3);
  controllers[0].abort();
  controllers[1].abort();
  const deadline = Date.now() + WAIT_MS;
  while ((await subscriberGauge(s)) !== 1) {
    assert.ok(Date.now() < deadline, "the server did not notice the disconnects");
    await sleep(20);
  }
  const batch = windows(customerId, 2);
  await collectorClients(s.baseUrl).json.sendMetricsBatch(batchRequest(batch));
  const update = await next(subs[2], "the update after the others left");
  assert.equal(update.delta.cpuTimeNanos, sum(batch, "cpuTimeNanos"));
  controllers[2].abort();
});

test("shutdown ends open streams with unavailable; a bad customer id is invalid_argument", async () => {
  const s = await server();
  const sub = subscribe(s.baseUrl, uniqueId("cust-stop"));
  await next(sub, "the snapshot");
  const ended = expectConnectError(sub.next(), Code.Unavailable);
  const exit = await s.stop();
  await ended;
  assert.equal(exit.code, 0);

  const other = await server();
  const bad = subscribe(other.baseUrl, "");
  await expectConnectError(bad.next(), Code.InvalidArgument);
  const tooLong = subscribe(other.baseUrl, "x".repeat(200));
  await expectConnectError(tooLong.next(), Code.InvalidArgument);
});
