// metald's legacy API (billing.v1.BillingService) against the real billingd:
// the exact JSON shapes metald posts (snake_case, int64 as numbers and as
// strings) and binary; cumulative counters with resets; retried, overlapping
// and out-of-order batches; a SIGKILL between batches; VM lifecycle; the
// heartbeat timeout. Every total is checked through GetCustomerUsage against
// values computed in this file.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Code, expectConnectError, metaldClients, queryClient } from "./lib/clients.mjs";
import {
  DAY_MS,
  HOUR_MS,
  MS,
  SECOND,
  expectedUsage,
  makeSamples,
  postMetald,
  sampleJson,
  sampleMessage,
  sendBatchJson,
} from "./lib/metald.mjs";
import { ts, uniqueId } from "./lib/metrics.mjs";
import { makeTempDir, removeTempDir, startServer } from "./lib/server.mjs";

const STOP_GRACE_MS = 300;
// Date.now() is whole milliseconds and billingd stamps heartbeats in
// nanoseconds, so a heartbeat answered within the same millisecond lies after
// the floored reading: an upper bound taken after a call rounds up.
const nowCeilingNs = () => BigInt(Date.now() + 1) * MS;
const servers = [];
let server;

before(async () => {
  // A short stop grace: a held stop's closing window is written 300 ms later.
  server = await startServer({ args: ["--metald-region=eu-test", `--metald-stop-grace-ms=${STOP_GRACE_MS}`] });
  servers.push(server);
});

after(async () => {
  for (const s of servers) await s.cleanup();
});

// Two hours before the current hour: every sample lies in the past.
const BASE_NS = BigInt(Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 2 * HOUR_MS) * MS;

// One VM's totals over the last 40 days, from the daily rollups.
async function vmUsage(baseUrl, customerId, vmId) {
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const usage = await queryClient(baseUrl).getCustomerUsage({
    customerId,
    startTime: ts(today - 40 * DAY_MS),
    endTime: ts(today + DAY_MS),
    granularity: 2, // GRANULARITY_DAY
  });
  const vm = usage.vms.find((v) => v.vmId === vmId);
  return vm ? vm.totals : null;
}

// assertUsage once a held stop's grace is over: polls for up to 5 s.
async function assertUsageEventually(baseUrl, customerId, vmId, expected) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await assertUsage(baseUrl, customerId, vmId, expected);
    } catch (error) {
      if (attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function assertUsage(baseUrl, customerId, vmId, expected) {
  const totals = await vmUsage(baseUrl, customerId, vmId);
  assert.ok(totals, `no usage for ${vmId}`);
  for (const [field, value] of Object.entries(expected)) {
    assert.equal(totals[field], value, `${vmId} ${field}`);
  }
}

test("JSON as metald sends it: int64 as numbers and strings, counter resets, retries and overlaps", async () => {
  const customer = uniqueId("metald-json");
  const vm = uniqueId("vm");
  // cpu resets after sample 7 (a VM restart); memory varies; tx grows.
  const samples = makeSamples(BASE_NS, 20, (i) => ({
    cpu: i < 8 ? BigInt(1_000_000 * (i + 1) * (i + 1)) : BigInt(500_000 * (i - 7)),
    memory: BigInt(1 << 30) + BigInt(i * 4096 + (i % 3)),
    tx: BigInt(1000 * i),
    rx: BigInt(7 * i * i),
  }));
  const first = samples.slice(0, 10);
  const overlapping = samples.slice(6, 15);
  const rest = samples.slice(15);

  await sendBatchJson(server.baseUrl, vm, customer, first);
  await assertUsage(server.baseUrl, customer, vm, expectedUsage([first]));

  // metald retries the whole batch: nothing changes.
  const retried = await sendBatchJson(server.baseUrl, vm, customer, first, { asStrings: true });
  assert.match(retried.message, /stored 0 new samples/);
  await assertUsage(server.baseUrl, customer, vm, expectedUsage([first]));

  // An overlapping batch adds only its new samples (int64 as strings).
  await sendBatchJson(server.baseUrl, vm, customer, overlapping, { asStrings: true });
  await sendBatchJson(server.baseUrl, vm, customer, rest);
  const expected = expectedUsage([first, overlapping, rest]);
  assert.deepEqual(expected, expectedUsage([samples]));
  await assertUsage(server.baseUrl, customer, vm, expected);
});

test("binary: the same contract through connect-node's binary codec", async () => {
  const customer = uniqueId("metald-bin");
  const vm = uniqueId("vm");
  const { binary } = metaldClients(server.baseUrl);
  const samples = makeSamples(BASE_NS, 30, (i) => ({ cpu: BigInt(3_000_000 * i), memory: BigInt(2048 + i), tx: BigInt(10 * i) }));
  const send = (batch) => binary.sendMetricsBatch({ vmId: vm, customerId: customer, metrics: batch.map(sampleMessage) });
  assert.equal((await send(samples.slice(0, 20))).success, true);
  assert.equal((await send(samples.slice(0, 20))).success, true);
  assert.equal((await send(samples.slice(10))).success, true);
  await assertUsage(server.baseUrl, customer, vm, expectedUsage([samples]));
});

test("concurrent retries and overlapping batches of one VM never count a sample twice", async () => {
  const customer = uniqueId("metald-race");
  const vm = uniqueId("vm");
  const samples = makeSamples(BASE_NS, 60, (i) => ({ cpu: BigInt(10_007 * i * i), memory: 5000n, tx: BigInt(3 * i) }));
  const { binary } = metaldClients(server.baseUrl);
  const send = (batch) => binary.sendMetricsBatch({ vmId: vm, customerId: customer, metrics: batch.map(sampleMessage) });
  await send(samples.slice(0, 1)); // the baseline
  // Arriving together, in any order, they land in one commit group or several;
  // the VM state carries from one to the next. Whatever the order, monotonic
  // counters give last minus first and a constant gauge its value times the span.
  const batches = [samples.slice(0, 20), samples.slice(0, 20), samples.slice(10, 40), samples.slice(30), samples.slice(0, 20), samples];
  const answers = await Promise.all(batches.map(send));
  assert.ok(answers.every((a) => a.success));
  const added = answers.reduce((n, a) => n + Number(/stored (\d+) new/.exec(a.message)[1]), 0);
  assert.ok(added >= 1 && added <= 59, `${added} new samples`);
  const span = samples[59].at - samples[0].at;
  await assertUsage(server.baseUrl, customer, vm, {
    cpuTimeNanos: samples[59].cpu - samples[0].cpu,
    networkTxBytes: samples[59].tx - samples[0].tx,
    memoryBytesSeconds: (5000n * span) / SECOND,
    vmActiveNanos: span,
  });
});

test("StreamLiveUsage carries metald usage like any other ingest", async () => {
  const customer = uniqueId("metald-live");
  const vm = uniqueId("vm");
  const stream = queryClient(server.baseUrl).streamLiveUsage({ customerId: customer })[Symbol.asyncIterator]();
  try {
    const snapshot = await stream.next();
    assert.equal(snapshot.value.snapshot, true);
    const samples = makeSamples(BASE_NS, 10, (i) => ({ cpu: BigInt(7_000 * i), memory: 100n, tx: BigInt(3 * i) }));
    await sendBatchJson(server.baseUrl, vm, customer, samples);
    const update = await stream.next();
    assert.equal(update.value.snapshot, false);
    const expected = expectedUsage([samples]);
    assert.equal(update.value.delta.cpuTimeNanos, expected.cpuTimeNanos);
    assert.equal(update.value.delta.networkTxBytes, expected.networkTxBytes);
    assert.equal(update.value.delta.vmActiveNanos, expected.vmActiveNanos);
  } finally {
    await stream.return?.();
  }
});

test("out-of-order batches: a late batch adds nothing, its usage is in the delta that jumped over it", async () => {
  const customer = uniqueId("metald-order");
  const vm = uniqueId("vm");
  const samples = makeSamples(BASE_NS, 30, (i) => ({ cpu: BigInt(1_000_000 * i), memory: 4096n, tx: BigInt(100 * i) }));
  const [a, b, c] = [samples.slice(0, 10), samples.slice(10, 20), samples.slice(20)];
  await sendBatchJson(server.baseUrl, vm, customer, a);
  await sendBatchJson(server.baseUrl, vm, customer, c);
  const late = await sendBatchJson(server.baseUrl, vm, customer, b);
  assert.match(late.message, /stored 0 new samples/);
  // Monotonic counters: last minus first; a constant gauge over the whole span.
  await assertUsage(server.baseUrl, customer, vm, {
    cpuTimeNanos: 29_000_000n,
    networkTxBytes: 2900n,
    memoryBytesSeconds: (4096n * (samples[29].at - samples[0].at)) / SECOND,
    vmActiveNanos: samples[29].at - samples[0].at,
  });
  // Samples inside one batch may come in any order.
  const vm2 = uniqueId("vm");
  await sendBatchJson(server.baseUrl, vm2, customer, [...samples].reverse());
  await assertUsage(server.baseUrl, customer, vm2, expectedUsage([samples]));
});

test("invalid input: invalid_argument for empty vm_id, empty batch, timestamps out of range", async () => {
  const customer = uniqueId("metald-bad");
  const good = { timestamp: new Date(Date.now() - HOUR_MS).toISOString(), cpu_time_nanos: 1, memory_usage_bytes: 1 };
  const cases = [
    { vm_id: "", customer_id: customer, metrics: [good] },
    { vm_id: "vm-x", customer_id: customer, metrics: [] },
    { vm_id: "vm-x", customer_id: "", metrics: [good] },
    { vm_id: "vm-x", customer_id: customer, metrics: [{ ...good, timestamp: "1990-01-01T00:00:00Z" }] },
    // Before the 90-day raw retention.
    { vm_id: "vm-x", customer_id: customer, metrics: [{ ...good, timestamp: new Date(Date.now() - 100 * DAY_MS).toISOString() }] },
    { vm_id: "vm-x", customer_id: customer, metrics: [{ ...good, timestamp: "2999-01-01T00:00:00Z" }] },
    { vm_id: "vm-x", customer_id: customer, metrics: [{ ...good, cpu_time_nanos: -5 }] },
  ];
  for (const body of cases) {
    const res = await postMetald(server.baseUrl, "SendMetricsBatch", body);
    assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
    assert.equal(res.json.code, "invalid_argument", res.text);
  }
  const { binary } = metaldClients(server.baseUrl);
  await expectConnectError(binary.sendMetricsBatch({ vmId: "vm-x", customerId: customer, metrics: [] }), Code.InvalidArgument);
  await expectConnectError(binary.notifyVmStarted({ vmId: "vm-x", customerId: customer, startTime: 0n }), Code.InvalidArgument);
  await expectConnectError(binary.notifyVmStopped({ vmId: uniqueId("never-seen"), stopTime: BASE_NS }), Code.NotFound);
  // X-Tenant-ID naming another customer than the body.
  const res = await postMetald(server.baseUrl, "SendMetricsBatch", { vm_id: "vm-x", customer_id: customer, metrics: [good] }, { "x-tenant-id": "someone-else" });
  assert.equal(res.json?.code, "permission_denied", res.text);
  assert.equal(await vmUsage(server.baseUrl, customer, "vm-x"), null, "nothing was stored");
});

test("lifecycle: exact VM time from NotifyVmStarted/Stopped, duplicates harmless; a 30-day VM", async () => {
  const customer = uniqueId("metald-life");
  const vm = uniqueId("vm");
  const hourStart = BASE_NS - 4n * 3600n * SECOND;
  const start = hourStart + 123_456_789n;
  const stop = start + 3n * 3600n * SECOND + 17n * SECOND + 5n; // crosses hours
  const notifyStart = { vm_id: vm, customer_id: customer, start_time: start };
  for (let i = 0; i < 2; i++) {
    const res = await postMetald(server.baseUrl, "NotifyVmStarted", i ? { ...notifyStart, start_time: String(start) } : notifyStart);
    assert.deepEqual(res.json, { success: true }, res.text);
  }
  // Samples from the start: counters count from zero at the start.
  const samples = makeSamples(start + SECOND, 10, (i) => ({ cpu: BigInt(2_000_000 * (i + 1)), memory: 1000n }));
  await sendBatchJson(server.baseUrl, vm, customer, samples);
  for (let i = 0; i < 2; i++) {
    const res = await postMetald(server.baseUrl, "NotifyVmStopped", { vm_id: vm, stop_time: String(stop) });
    assert.deepEqual(res.json, { success: true }, res.text);
  }
  // 1000 B from the start to the last sample and held to the stop (written
  // once the stop's grace for a final batch is over).
  await assertUsageEventually(server.baseUrl, customer, vm, {
    cpuTimeNanos: 20_000_000n,
    vmActiveNanos: stop - start,
    memoryBytesSeconds: (1000n * (stop - start)) / SECOND,
  });
  const windowReport = await queryClient(server.baseUrl).getBillingWindow({
    customerId: customer,
    startTime: ts(Number(hourStart / MS)),
    endTime: ts(Number(hourStart / MS) + 5 * HOUR_MS),
  });
  assert.equal(windowReport.totals.vmActiveNanos, stop - start);
  assert.equal(windowReport.vms[0].region, "eu-test");

  // A 30-day VM without samples: VM-hours are exactly its start to stop.
  const longVm = uniqueId("vm-30d");
  const longStart = BigInt(Date.now() - 31 * DAY_MS) * MS + 987_654_321n;
  const longStop = longStart + 30n * 24n * 3600n * SECOND + 1n;
  const { json } = metaldClients(server.baseUrl);
  assert.equal((await json.notifyVmStarted({ vmId: longVm, customerId: customer, startTime: longStart })).success, true);
  assert.equal((await json.notifyVmStopped({ vmId: longVm, stopTime: longStop })).success, true);
  await assertUsageEventually(server.baseUrl, customer, longVm, { vmActiveNanos: longStop - longStart, cpuTimeNanos: 0n });
});

test("a SIGKILL between batches changes no total, and the next batch continues exactly", async () => {
  const dataDir = makeTempDir();
  try {
    let node = await startServer({ dataDir });
    servers.push(node);
    const customer = uniqueId("metald-kill");
    const vm = uniqueId("vm");
    const samples = makeSamples(BASE_NS, 40, (i) => ({ cpu: BigInt(1_000_003 * i * i), memory: BigInt(10_000 + 37 * i), rx: BigInt(i * 11) }));
    const batches = [samples.slice(0, 15), samples.slice(15, 30), samples.slice(30)];
    const instance = uniqueId("metald-instance");
    await sendBatchJson(node.baseUrl, vm, customer, batches[0]);
    await sendBatchJson(node.baseUrl, vm, customer, batches[1]);
    assert.equal((await metaldClients(node.baseUrl).binary.sendHeartbeat({ instanceId: instance, activeVms: [vm] })).success, true);
    await node.kill();
    node = await startServer({ dataDir });
    servers.push(node);
    await assertUsage(node.baseUrl, customer, vm, expectedUsage(batches.slice(0, 2)));
    // The heartbeat and the VM's session survived too.
    const sessions = await metaldClients(node.baseUrl).binary.getActiveBillingSessions({ instanceId: instance });
    assert.deepEqual(sessions.sessions.map((x) => [x.vmId, x.customerId, x.startTime, x.lastSampleTime]), [[vm, customer, samples[0].at, samples[29].at]]);
    // metald did not see the ack of batch 1 and retries it, then goes on.
    await sendBatchJson(node.baseUrl, vm, customer, batches[1]);
    await sendBatchJson(node.baseUrl, vm, customer, batches[2]);
    await assertUsage(node.baseUrl, customer, vm, expectedUsage([samples]));
    await node.cleanup();
  } finally {
    removeTempDir(dataDir);
  }
});

test("heartbeat timeout: a silent instance's VM sessions end at its last heartbeat and reopen with samples", async () => {
  const node = await startServer({ args: ["--heartbeat-timeout-seconds=2"] });
  servers.push(node);
  const { binary } = metaldClients(node.baseUrl);
  const customer = uniqueId("metald-hb");
  const vm = uniqueId("vm");
  const instance = uniqueId("metald-instance");
  const nowNs = BigInt(Date.now()) * MS;
  const start = nowNs - 20n * SECOND;
  assert.equal((await binary.notifyVmStarted({ vmId: vm, customerId: customer, startTime: start })).success, true);
  const samples = makeSamples(start + SECOND, 5, (i) => ({ cpu: BigInt(1000 * (i + 1)), memory: 1n }));
  await sendBatchJson(node.baseUrl, vm, customer, samples);

  const before = BigInt(Date.now()) * MS;
  assert.equal((await binary.sendHeartbeat({ instanceId: instance, activeVms: [vm] })).success, true);
  const afterHeartbeat = nowCeilingNs();
  const open = await binary.getActiveBillingSessions({ instanceId: instance });
  assert.deepEqual(open.sessions.map((s) => [s.vmId, s.customerId, s.startTime]), [[vm, customer, start]]);

  // Silent for more than the timeout: the session ends at the last heartbeat.
  let sessions = open.sessions;
  for (let i = 0; i < 100 && sessions.length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    sessions = (await binary.getActiveBillingSessions({ instanceId: instance })).sessions;
  }
  assert.deepEqual(sessions, [], "the session was not ended after the heartbeat timeout");
  const ended = await vmUsage(node.baseUrl, customer, vm);
  assert.ok(ended.vmActiveNanos >= before - start && ended.vmActiveNanos <= afterHeartbeat - start, `VM time ${ended.vmActiveNanos} ends at the heartbeat`);
  assert.equal(ended.cpuTimeNanos, 5000n);

  // Samples resume: the session reopens, counters continue from the last
  // sample, and the silent time counts (the VM ran: its counters moved).
  const resumed = makeSamples(afterHeartbeat + MS, 3, (i) => ({ cpu: BigInt(6000 + 1000 * i), memory: 1n }));
  await sendBatchJson(node.baseUrl, vm, customer, resumed);
  await assertUsage(node.baseUrl, customer, vm, { cpuTimeNanos: 8000n, vmActiveNanos: resumed[2].at - start });
  await binary.sendHeartbeat({ instanceId: instance, activeVms: [vm] });
  const reopened = await binary.getActiveBillingSessions({ instanceId: instance });
  assert.deepEqual(reopened.sessions.map((s) => s.vmId), [vm]);
  await node.cleanup();
});

test("gaps: NotifyPossibleGap and a hole in a VM's samples appear in GetBillingWindow", async () => {
  const customer = uniqueId("metald-gap");
  const vm = uniqueId("vm");
  const before = makeSamples(BASE_NS, 10, (i) => ({ cpu: BigInt(1000 * i), memory: 10n }));
  const resumeAt = BASE_NS + 300n * SECOND; // a 5-minute hole: at least --expected-cadence-seconds
  const after = makeSamples(resumeAt, 10, (i) => ({ cpu: BigInt(50_000 + 1000 * i), memory: 10n }));
  await sendBatchJson(server.baseUrl, vm, customer, before);
  await sendBatchJson(server.baseUrl, vm, customer, after);
  const reported = { from: resumeAt + 10n * SECOND, to: resumeAt + 20n * SECOND };
  const res = await postMetald(server.baseUrl, "NotifyPossibleGap", { vm_id: vm, last_sent: reported.from, resume_time: String(reported.to) });
  assert.deepEqual(res.json, { success: true }, res.text);
  const bad = await postMetald(server.baseUrl, "NotifyPossibleGap", { vm_id: vm, last_sent: reported.to, resume_time: reported.from });
  assert.equal(bad.json?.code, "invalid_argument", bad.text);

  const report = await queryClient(server.baseUrl).getBillingWindow({
    customerId: customer,
    startTime: ts(Number(BASE_NS / MS)),
    endTime: ts(Number(BASE_NS / MS) + HOUR_MS),
  });
  const toNs = (t) => t.seconds * SECOND + BigInt(t.nanos);
  const gaps = report.gaps.map((g) => [g.vmId, toNs(g.startTime), toNs(g.endTime)]);
  const rangeEnd = BASE_NS + BigInt(HOUR_MS) * MS;
  assert.deepEqual(gaps, [
    [vm, before[9].at, resumeAt],
    // The session is open and nothing came since: a gap up to now, clipped to the range.
    [vm, after[9].at, rangeEnd],
    [vm, reported.from, reported.to],
  ]);
  // Counters are cumulative: the hole's usage is still counted, once.
  await assertUsage(server.baseUrl, customer, vm, expectedUsage([before, after]));

  // A running VM (open session) silent since its last sample: a gap up to now.
  const silentVm = uniqueId("vm-silent");
  const start = BigInt(Date.now() - 10 * 60_000) * MS;
  const { binary } = metaldClients(server.baseUrl);
  await binary.notifyVmStarted({ vmId: silentVm, customerId: customer, startTime: start });
  const last = makeSamples(start + SECOND, 3, (i) => ({ cpu: BigInt(i), memory: 1n }));
  await sendBatchJson(server.baseUrl, silentVm, customer, last);
  const queriedAt = BigInt(Date.now()) * MS;
  const hour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  const live = await queryClient(server.baseUrl).getBillingWindow({ customerId: customer, startTime: ts(hour - 2 * HOUR_MS), endTime: ts(hour + HOUR_MS) });
  const open = live.gaps.filter((g) => g.vmId === silentVm);
  assert.equal(open.length, 1, JSON.stringify(live.gaps, (_, v) => (typeof v === "bigint" ? String(v) : v)));
  assert.equal(toNs(open[0].startTime), last[2].at);
  assert.ok(toNs(open[0].endTime) >= queriedAt, "the open gap runs until the query");
});

test("a VM listed in heartbeats before it was ever started shows that stretch as a gap once it is known", async () => {
  const node = await startServer({ args: ["--expected-cadence-seconds=1"] });
  servers.push(node);
  const { binary } = metaldClients(node.baseUrl);
  const instance = uniqueId("metald-listed");
  const customer = uniqueId("metald-listed");
  const vm = uniqueId("vm-listed");
  const known = uniqueId("vm-known");
  await binary.notifyVmStarted({ vmId: known, customerId: customer, startTime: BigInt(Date.now()) * MS });

  const beforeListing = BigInt(Date.now()) * MS;
  // metald lists a VM we have never heard of: no customer, so nothing to show yet.
  assert.equal((await binary.sendHeartbeat({ instanceId: instance, activeVms: [vm, known] })).success, true);
  const afterListing = nowCeilingNs();
  assert.deepEqual((await binary.getActiveBillingSessions({ instanceId: instance })).sessions.map((s) => s.vmId), [known]);

  // Its session starts 3 s later (ahead of our clock is fine within the skew).
  const start = afterListing + 3n * SECOND;
  await binary.notifyVmStarted({ vmId: vm, customerId: customer, startTime: start });
  // The next heartbeat finds it known and records the stretch it was listed without a session.
  assert.equal((await binary.sendHeartbeat({ instanceId: instance, activeVms: [vm, known] })).success, true);

  const hour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  const toNs = (t) => t.seconds * SECOND + BigInt(t.nanos);
  let listed = [];
  for (let attempt = 0; attempt < 50 && listed.length === 0; ++attempt) {
    const report = await queryClient(node.baseUrl).getBillingWindow({ customerId: customer, startTime: ts(hour - HOUR_MS), endTime: ts(hour + HOUR_MS) });
    listed = report.gaps.filter((g) => g.vmId === vm && toNs(g.endTime) === start);
    if (listed.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(listed.length, 1, "the listed-before-start gap was not recorded");
  const gapStart = toNs(listed[0].startTime);
  assert.ok(gapStart >= beforeListing && gapStart <= afterListing, `the gap starts at the first heartbeat that listed the VM (${gapStart})`);
  // The VM already known when listed got no such gap.
  const report = await queryClient(node.baseUrl).getBillingWindow({ customerId: customer, startTime: ts(hour - HOUR_MS), endTime: ts(hour + HOUR_MS) });
  assert.equal(report.gaps.filter((g) => g.vmId === known && toNs(g.endTime) <= afterListing).length, 0);
});

test("a final batch arriving after NotifyVmStopped is billed exactly once, across a restart; later ones are refused truthfully", async () => {
  const dataDir = makeTempDir();
  try {
    // A long grace first: the final batch and its retries arrive while the stop is held.
    let node = await startServer({ dataDir, args: ["--metald-stop-grace-ms=60000"] });
    servers.push(node);
    const customer = uniqueId("metald-final");
    const vm = uniqueId("vm");
    const start = BASE_NS;
    const memory = 1_000_000_000n; // 1e9 B: every byte-second total is an exact integer
    const samples = makeSamples(start + 100n * MS, 700, (i) => ({ cpu: BigInt(1000 * (i + 1)), memory }));
    const [first, last] = [samples.slice(0, 600), samples.slice(600)]; // S+0.1..S+60 s, S+60.1..S+70 s
    const stop = start + 70n * SECOND + 50n * MS;
    const started = await postMetald(node.baseUrl, "NotifyVmStarted", { vm_id: vm, customer_id: customer, start_time: String(start) });
    assert.deepEqual(started.json, { success: true }, started.text);
    assert.match((await sendBatchJson(node.baseUrl, vm, customer, first)).message, /stored 600 new samples of 600 \(0 already seen\)/);
    const stopped = await postMetald(node.baseUrl, "NotifyVmStopped", { vm_id: vm, stop_time: String(stop) });
    assert.deepEqual(stopped.json, { success: true }, stopped.text);

    // The final batch, after the stop: billed, and said so.
    assert.match((await sendBatchJson(node.baseUrl, vm, customer, last)).message, /stored 100 new samples of 100 \(0 already seen\)/);
    assert.match((await sendBatchJson(node.baseUrl, vm, customer, last)).message, /stored 0 new samples of 100 \(100 already seen\)/);
    const billed = { cpuTimeNanos: 700_000n, vmActiveNanos: samples.at(-1).at - start, memoryBytesSeconds: samples.at(-1).at - start };
    await assertUsage(node.baseUrl, customer, vm, billed);

    // SIGKILL while the stop is held; after the restart the retry is still a duplicate.
    await node.kill();
    node = await startServer({ dataDir, args: [`--metald-stop-grace-ms=${STOP_GRACE_MS}`] });
    servers.push(node);
    assert.match((await sendBatchJson(node.baseUrl, vm, customer, last)).message, /stored 0 new samples of 100 \(100 already seen\)/);
    // The held stop is finished after the grace: the VM ran exactly to the stop.
    const closed = { cpuTimeNanos: 700_000n, vmActiveNanos: stop - start, memoryBytesSeconds: stop - start };
    await assertUsageEventually(node.baseUrl, customer, vm, closed);

    // A never-seen sample stamped before the stop, arriving after the grace:
    // not billable any more, and not called "already seen".
    const tooLate = [{ at: start + 70n * SECOND + 20n * MS, cpu: 700_500n, memory }];
    const res = await postMetald(node.baseUrl, "SendMetricsBatch", { vm_id: vm, customer_id: customer, metrics: tooLate.map((s) => sampleJson(s)) });
    assert.equal(res.json?.code, "failed_precondition", res.text);
    assert.match(res.json.message, /arrived after its usage was closed/);
    assert.match(res.json.message, /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z/, "instants as RFC 3339");
    assert.doesNotMatch(res.json.message, /already seen/);
    await assertUsage(node.baseUrl, customer, vm, closed);
    // Samples after the stop: the VM runs again and they are billed as new.
    const again = makeSamples(stop + SECOND, 3, (i) => ({ cpu: BigInt(800_000 + 1000 * i), memory }));
    assert.match((await sendBatchJson(node.baseUrl, vm, customer, again)).message, /stored 3 new samples of 3/);
    await node.cleanup();
  } finally {
    removeTempDir(dataDir);
  }
});
