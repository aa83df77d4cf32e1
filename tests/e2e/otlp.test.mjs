// OpenTelemetry traces over OTLP/HTTP: billingd exports one server span per
// call, continuing the caller's traceparent, with the actor hop, the commit
// group and the WAL fsync as children, to a real OTLP receiver started here
// (decoding with the official generated protos); and a collector that is down
// or too slow never holds up ingest: its spans are dropped and counted.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { batchRequest } from "./lib/batch.mjs";
import { collectorClients, Code, expectConnectError } from "./lib/clients.mjs";
import { freePort } from "./lib/cluster.mjs";
import { makeSamples, MS, postMetald, sampleJson } from "./lib/metald.mjs";
import { makeMetric, uniqueId } from "./lib/metrics.mjs";
import { SpanKind, startOtlpReceiver, waitForSpans } from "./lib/otlp.mjs";
import { startServer } from "./lib/server.mjs";

const withHeaders = (headers) => ({
  interceptors: [
    (next) => async (req) => {
      for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
      return next(req);
    },
  ],
});

const randomHex = (bytes) => Buffer.from(Array.from({ length: bytes }, () => Math.floor(Math.random() * 256))).toString("hex");
const traceparent = (traceId, parentId, flags = "01") => `00-${traceId}-${parentId}-${flags}`;

async function spanCounter(baseUrl, outcome) {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const m = new RegExp(`^billing_trace_spans_total\\{outcome="${outcome}"\\} (\\S+)$`, "m").exec(text);
  assert.ok(m, `no billing_trace_spans_total{outcome="${outcome}"} in /metrics`);
  return Number(m[1]);
}

async function waitFor(check, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const byName = (spans, name) => spans.filter((s) => s.name === name);
const only = (spans, name) => {
  const found = byName(spans, name);
  assert.equal(found.length, 1, `exactly one ${name} span, got ${found.length}`);
  return found[0];
};
const within = (child, parent) => {
  assert.ok(child.start >= parent.start && child.end <= parent.end, `${child.name} lies within ${parent.name}`);
  assert.ok(child.end >= child.start, `${child.name} ends after it starts`);
};

// The spans of one trace once its server span and every child in `names` arrived.
async function traceOf(receiver, traceId, names) {
  const spans = await waitForSpans(
    receiver,
    (all) => names.every((name) => all.some((s) => s.traceId === traceId && s.name === name)),
    `spans ${names.join(", ")} of trace ${traceId}`,
  );
  return spans.filter((s) => s.traceId === traceId);
}

let receiver;
let server;
before(async () => {
  receiver = await startOtlpReceiver();
  server = await startServer({ args: [`--otlp-endpoint=${receiver.endpoint}`] });
});
after(async () => {
  await server?.cleanup();
  await receiver?.close();
});

test("an ingest call continues the caller's trace: server span, actor hop, commit group, fsync", async () => {
  const traceId = randomHex(16);
  const callerSpan = randomHex(8);
  const clients = collectorClients(server.baseUrl, withHeaders({ traceparent: traceparent(traceId, callerSpan) }));
  const customerId = uniqueId("cust-otlp");
  await clients.binary.sendMetricsBatch(batchRequest([makeMetric({ customerId }), makeMetric({ customerId, vmId: "vm-2" })]));

  const spans = await traceOf(receiver, traceId, [
    "billing.v1.BillingCollectorService/SendMetricsBatch",
    "actor_hop ingest",
    "commit_group",
    "wal_fsync",
  ]);
  const serverSpan = only(spans, "billing.v1.BillingCollectorService/SendMetricsBatch");
  const hop = only(spans, "actor_hop ingest");
  const commit = only(spans, "commit_group");
  const fsync = only(spans, "wal_fsync");

  // The tree: caller -> server -> actor hop -> commit group -> fsync.
  assert.equal(serverSpan.parentSpanId, callerSpan);
  assert.equal(hop.parentSpanId, serverSpan.spanId);
  assert.equal(commit.parentSpanId, hop.spanId);
  assert.equal(fsync.parentSpanId, commit.spanId);
  assert.equal(new Set(spans.map((s) => s.spanId)).size, spans.length, "span ids are unique");
  for (const span of spans) assert.match(span.spanId, /^[0-9a-f]{16}$/);
  assert.notEqual(serverSpan.spanId, callerSpan);
  within(hop, serverSpan);
  within(commit, hop);
  within(fsync, commit);

  assert.equal(serverSpan.kind, SpanKind.SERVER);
  for (const span of [hop, commit, fsync]) assert.equal(span.kind, SpanKind.INTERNAL);
  assert.equal(serverSpan.flags & 0x301, 0x301, "sampled, parent known to be remote");
  assert.equal(hop.flags & 0x300, 0x100, "a local parent");

  assert.deepEqual(
    {
      system: serverSpan.attributes["rpc.system"],
      service: serverSpan.attributes["rpc.service"],
      method: serverSpan.attributes["rpc.method"],
      serverAddress: serverSpan.attributes["server.address"],
      serverPort: serverSpan.attributes["server.port"],
      peer: serverSpan.attributes["network.peer.address"],
      transport: serverSpan.attributes["network.transport"],
    },
    {
      system: "connect_rpc",
      service: "billing.v1.BillingCollectorService",
      method: "SendMetricsBatch",
      serverAddress: "127.0.0.1",
      serverPort: server.port,
      peer: "127.0.0.1",
      transport: "tcp",
    },
  );
  assert.ok(serverSpan.attributes["network.peer.port"] > 0);
  assert.equal(serverSpan.attributes["rpc.connect_rpc.error_code"], undefined);
  assert.equal(serverSpan.statusCode, 0);
  assert.equal(hop.attributes["billing.batch.windows"], 2);
  assert.equal(commit.attributes["db.system.name"], "rocksdb");
  assert.ok(commit.attributes["billing.commit_group.requests"] >= 1);
  assert.equal(commit.attributes["billing.commit_group.id"], fsync.attributes["billing.commit_group.id"]);
  assert.equal(fsync.attributes["billing.wal.sync"], true);

  assert.equal(serverSpan.resource["service.name"], "billingd");
  assert.match(serverSpan.resource["service.version"], /^\d+\.\d+\.\d+/);
  assert.match(serverSpan.resource["service.instance.id"], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(serverSpan.resource["telemetry.sdk.language"], "cpp");
  assert.equal(serverSpan.resource["telemetry.sdk.name"], "billingd");
  assert.equal(serverSpan.scope, "billingd");

  // Every export was protobuf to /v1/traces; the log line names the same span.
  assert.ok(receiver.requests.every((r) => r.path === "/v1/traces" && r.contentType === "application/x-protobuf"));
  const logged = server.stderr
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line))
    .find((entry) => entry.msg === "call" && entry.trace_id === traceId);
  assert.equal(logged?.span_id, serverSpan.spanId);
  assert.equal(logged?.parent_id, callerSpan);
});

test("metald's calls are traced through the metald actor hop to the commit", async () => {
  const traceId = randomHex(16);
  const callerSpan = randomHex(8);
  const start = BigInt(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 7_200_000) * MS;
  const samples = makeSamples(start, 3, (i) => ({ cpu: BigInt(1_000_000 * (i + 1)), memory: 1n << 30n, tx: BigInt(i), rx: 0n }));
  const res = await postMetald(
    server.baseUrl,
    "SendMetricsBatch",
    { vm_id: uniqueId("vm"), customer_id: uniqueId("cust-metald-otlp"), metrics: samples.map((s) => sampleJson(s)) },
    { traceparent: traceparent(traceId, callerSpan) },
  );
  assert.equal(res.status, 200, res.text);
  const spans = await traceOf(receiver, traceId, ["billing.v1.BillingService/SendMetricsBatch", "actor_hop metald", "commit_group", "wal_fsync"]);
  const serverSpan = only(spans, "billing.v1.BillingService/SendMetricsBatch");
  const hop = only(spans, "actor_hop metald");
  assert.equal(serverSpan.parentSpanId, callerSpan);
  assert.equal(serverSpan.attributes["rpc.service"], "billing.v1.BillingService");
  assert.equal(serverSpan.attributes["billing.wire_codec"], "json");
  assert.equal(hop.parentSpanId, serverSpan.spanId);
  assert.equal(hop.attributes["billing.metald.samples"], 3);
  assert.equal(only(spans, "commit_group").parentSpanId, hop.spanId);
  assert.equal(only(spans, "wal_fsync").parentSpanId, only(spans, "commit_group").spanId);
});

test("errors carry their Connect code; no traceparent starts a trace; an unsampled one is not exported", async () => {
  const failedTrace = randomHex(16);
  const failing = collectorClients(server.baseUrl, withHeaders({ traceparent: traceparent(failedTrace, randomHex(8)) }));
  await expectConnectError(failing.json.sendMetricsBatch({ batchId: "", metrics: [] }), Code.InvalidArgument);

  const unsampledTrace = randomHex(16);
  const unsampled = collectorClients(server.baseUrl, withHeaders({ traceparent: traceparent(unsampledTrace, randomHex(8), "00") }));
  await unsampled.binary.sendMetricsBatch(batchRequest([makeMetric({ customerId: uniqueId("cust-unsampled") })]));

  // Last: a SendMetrics without traceparent; once its spans are in, the
  // earlier calls' spans would be too (one exporter, in order).
  await collectorClients(server.baseUrl).binary.sendMetrics({ metrics: makeMetric({ customerId: uniqueId("cust-root") }) });
  const all = await waitForSpans(
    receiver,
    (spans) => spans.some((s) => s.name === "billing.v1.BillingCollectorService/SendMetrics" && s.parentSpanId === ""),
    "a root SendMetrics span",
  );
  const root = all.find((s) => s.name === "billing.v1.BillingCollectorService/SendMetrics" && s.parentSpanId === "");
  assert.match(root.traceId, /^[0-9a-f]{32}$/);
  assert.equal(root.flags & 0x300, 0x100, "no remote parent");
  const rootChildren = all.filter((s) => s.traceId === root.traceId && s.parentSpanId === root.spanId);
  assert.deepEqual(rootChildren.map((s) => s.name), ["actor_hop ingest"]);

  const failed = all.filter((s) => s.traceId === failedTrace);
  assert.equal(failed.length, 1, "a call refused before the actors has only its server span");
  assert.equal(failed[0].attributes["rpc.connect_rpc.error_code"], "invalid_argument");
  assert.equal(failed[0].statusCode, 0, "a client error leaves a server span's status unset");

  assert.equal(all.filter((s) => s.traceId === unsampledTrace).length, 0);
});

test("a collector that is down: ingest goes on, every span is dropped and counted", async () => {
  const down = await startServer({ args: [`--otlp-endpoint=http://127.0.0.1:${await freePort()}`, "--otlp-max-queue-spans=8"] });
  try {
    const clients = collectorClients(down.baseUrl, withHeaders({ traceparent: traceparent(randomHex(16), randomHex(8)) }));
    for (let i = 0; i < 20; i++) {
      const response = await clients.binary.sendMetricsBatch(batchRequest([makeMetric({ customerId: uniqueId("cust-down") })]));
      assert.equal(response.acceptedCount, 1);
    }
    // 20 calls make 80 spans; each either overflowed the queue or failed to export.
    await waitFor(async () => (await spanCounter(down.baseUrl, "dropped")) >= 80, "80 dropped spans");
    assert.equal(await spanCounter(down.baseUrl, "exported"), 0);
  } finally {
    await down.cleanup();
  }
});

test("a collector too slow to answer: ingest never waits for it, the bounded queue drops", async () => {
  const slow = await startOtlpReceiver({ mode: "hang" });
  const busy = await startServer({ args: [`--otlp-endpoint=${slow.endpoint}`, "--otlp-max-queue-spans=16", "--otlp-timeout-ms=5000"] });
  try {
    const clients = collectorClients(busy.baseUrl, withHeaders({ traceparent: traceparent(randomHex(16), randomHex(8)) }));
    await clients.binary.sendMetricsBatch(batchRequest([makeMetric({ customerId: uniqueId("cust-slow") })]));
    // The exporter is now stuck in a request the receiver never answers.
    await waitFor(() => slow.hanging >= 1, "an export reaching the hanging collector");
    const droppedBefore = await spanCounter(busy.baseUrl, "dropped");
    const calls = Array.from({ length: 30 }, () =>
      clients.binary.sendMetricsBatch(batchRequest([makeMetric({ customerId: uniqueId("cust-slow") })])),
    );
    const answers = await Promise.all(calls);
    assert.equal(answers.length, 30);
    for (const answer of answers) assert.equal(answer.acceptedCount, 1);
    // 30 calls make 120 spans, each counted before its call is answered; at
    // most 16 fit the queue and at most 16 more may be in an export that has
    // not timed out yet.
    const dropped = (await spanCounter(busy.baseUrl, "dropped")) - droppedBefore;
    assert.ok(dropped >= 120 - 2 * 16, `${dropped} spans dropped`);
    assert.equal(await spanCounter(busy.baseUrl, "exported"), 0);
  } finally {
    await busy.cleanup();
    await slow.close();
  }
});
