// The Connect protocol at the HTTP level, with raw requests to 127.0.0.1:
// codecs and field names, compression, malformed and oversized bodies, wrong
// routes, methods and content types, health and shutdown.
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { after, before, test } from "node:test";
import { create, fromBinary, toBinary, toJsonString } from "@bufbuild/protobuf";
import { compressionGzip } from "@connectrpc/connect-node";
import { collectorClients } from "./lib/clients.mjs";
import { batchRequest, expectedSummary, summarize } from "./lib/batch.mjs";
import { assertConnectError, rawRequest } from "./lib/http.mjs";
import { makeMetric, metricToJson, uniqueId, withFields } from "./lib/metrics.mjs";
import { SendMetricsBatchRequestSchema, SendMetricsBatchResponseSchema } from "./lib/schema.mjs";
import { dumpWindows, startServer } from "./lib/server.mjs";
import { assertStoredExactly } from "./lib/stored.mjs";

const MAX_BODY = 64 * 1024;
const BATCH_PATH = "/billing.v1.BillingCollectorService/SendMetricsBatch";
const JSON_HEADERS = { "content-type": "application/json", "connect-protocol-version": "1" };
const PROTO_HEADERS = { "content-type": "application/proto", "connect-protocol-version": "1" };

let server;
const customerId = uniqueId("cust-http");
const stored = [];
let minute = 0;
// A fresh window of this file's customer (a new minute each call).
const nextMetric = (extra = {}) => makeMetric({ customerId, vmId: "vm-http", minutesAgo: ++minute, ...extra });

const batchJson = (metrics, extra = {}) => toJsonString(SendMetricsBatchRequestSchema, create(SendMetricsBatchRequestSchema, batchRequest(metrics, extra)));
const batchProto = (metrics, extra = {}) => toBinary(SendMetricsBatchRequestSchema, create(SendMetricsBatchRequestSchema, batchRequest(metrics, extra)));

before(async () => {
  server = await startServer({ args: [`--max-body-bytes=${MAX_BODY}`] });
});

after(async () => {
  await server?.cleanup();
});

test("GET /healthz answers 200", async () => {
  const res = await rawRequest(server.baseUrl, "/healthz", { method: "GET" });
  assert.equal(res.status, 200, res.text);
});

test("a raw JSON call succeeds with 200 application/json and the proto3 JSON response", async () => {
  const m = nextMetric();
  const res = await rawRequest(server.baseUrl, BATCH_PATH, { headers: JSON_HEADERS, body: batchJson([m]) });
  assert.equal(res.status, 200, res.text);
  assert.match(res.contentType, /^application\/json/);
  // proto3 JSON: lowerCamelCase names, zero values omitted.
  assert.deepEqual(res.json, { acceptedCount: 1 });
  stored.push(m);
});

test("JSON input with the original (snake_case) field names is accepted", async () => {
  const m = nextMetric();
  const camel = metricToJson(m);
  const snake = Object.fromEntries(Object.entries(camel).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]));
  assert.ok("cpu_time_nanos" in snake && "window_start" in snake);
  const body = JSON.stringify({ batch_id: uniqueId("batch-snake"), instance_id: "metald-e2e-1", region: "us-east-1", metrics: [snake] });
  const res = await rawRequest(server.baseUrl, BATCH_PATH, { headers: JSON_HEADERS, body });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { acceptedCount: 1 });
  stored.push(m);
});

test("a raw binary call succeeds with 200 application/proto", async () => {
  const m = nextMetric();
  const res = await rawRequest(server.baseUrl, BATCH_PATH, { headers: PROTO_HEADERS, body: batchProto([m]) });
  assert.equal(res.status, 200, res.text);
  assert.match(res.contentType, /^application\/proto/);
  const response = fromBinary(SendMetricsBatchResponseSchema, res.body);
  assert.deepEqual(summarize(response), expectedSummary(1));
  stored.push(m);
});

test("a gzip-compressed request body is accepted (raw JSON and connect-node binary)", async () => {
  const m = nextMetric();
  const res = await rawRequest(server.baseUrl, BATCH_PATH, {
    headers: { ...JSON_HEADERS, "content-encoding": "gzip" },
    body: gzipSync(batchJson([m])),
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { acceptedCount: 1 });
  stored.push(m);

  const zipped = collectorClients(server.baseUrl, { sendCompression: compressionGzip, compressMinBytes: 0 });
  const n = nextMetric();
  assert.deepEqual(summarize(await zipped.binary.sendMetricsBatch(batchRequest([n]))), expectedSummary(1));
  assert.deepEqual(summarize(await zipped.json.sendMetricsBatch(batchRequest([n]))), expectedSummary(1, { duplicates: [0] }));
  stored.push(n);
});

test("a truncated binary body fails with 400 invalid_argument", async () => {
  const body = batchProto([nextMetric(), nextMetric()]);
  // Cut into the last metric: its length prefix promises more than is there.
  const res = await rawRequest(server.baseUrl, BATCH_PATH, { headers: PROTO_HEADERS, body: body.subarray(0, body.length - 5) });
  assertConnectError(res, 400, "invalid_argument");
});

test("invalid JSON fails with 400 invalid_argument", async () => {
  for (const body of ['{"batchId": "b-1", "metrics": [', "not json at all", '{"batchId": "b-1", "metrics": "nope"}', '{"batchId": "b-1", "metrics": [{"cpuTimeNanos": "-5"}]}']) {
    const res = await rawRequest(server.baseUrl, BATCH_PATH, { headers: JSON_HEADERS, body });
    try {
      assertConnectError(res, 400, "invalid_argument");
    } catch (err) {
      err.message = `body ${body}: ${err.message}`;
      throw err;
    }
  }
});

test("an unsupported content type fails with 415", async () => {
  const res = await rawRequest(server.baseUrl, BATCH_PATH, { headers: { "content-type": "text/plain" }, body: batchJson([nextMetric()]) });
  assert.equal(res.status, 415, `HTTP ${res.status}: ${res.text}`);
});

test("a body larger than --max-body-bytes fails with 429 resource_exhausted", async () => {
  const metrics = [];
  while (metrics.length * 600 < 2 * MAX_BODY) metrics.push(nextMetric());
  const body = batchJson(metrics);
  assert.ok(body.length > MAX_BODY && body.length < 4 * MAX_BODY, `body is ${body.length} bytes`);
  const res = await rawRequest(server.baseUrl, BATCH_PATH, { headers: JSON_HEADERS, body });
  assertConnectError(res, 429, "resource_exhausted");
});

test("a gzip body that inflates beyond --max-body-bytes fails with 429 resource_exhausted", async () => {
  // Valid JSON padded with whitespace: tiny on the wire, 4x the limit inflated.
  const body = gzipSync(batchJson([nextMetric()]).replace(/^\{/, `{${" ".repeat(4 * MAX_BODY)}`));
  assert.ok(body.length < MAX_BODY / 4, `compressed body is ${body.length} bytes`);
  const res = await rawRequest(server.baseUrl, BATCH_PATH, { headers: { ...JSON_HEADERS, "content-encoding": "gzip" }, body });
  assertConnectError(res, 429, "resource_exhausted");
});

test("an unknown path fails with 404 unimplemented", async () => {
  for (const path of ["/billing.v1.BillingCollectorService/NoSuchMethod", "/billing.v1.NoSuchService/SendMetrics", "/nope"]) {
    const res = await rawRequest(server.baseUrl, path, { headers: JSON_HEADERS, body: "{}" });
    try {
      assertConnectError(res, 404, "unimplemented");
    } catch (err) {
      err.message = `POST ${path}: ${err.message}`;
      throw err;
    }
  }
});

test("GET on an RPC path fails with 405", async () => {
  const res = await rawRequest(server.baseUrl, BATCH_PATH, { method: "GET", headers: { "connect-protocol-version": "1" } });
  assert.equal(res.status, 405, `HTTP ${res.status}: ${res.text}`);
});

test("GET /metrics is Prometheus text that counts calls, accepted windows, commits and fsyncs", async () => {
  const scrape = async () => {
    const res = await rawRequest(server.baseUrl, "/metrics", { method: "GET" });
    assert.equal(res.status, 200, res.text);
    assert.match(res.contentType, /^text\/plain; version=0\.0\.4/);
    const value = (name) => Number(res.text.match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1]);
    const labelled = (name, labels) => Number(res.text.match(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, "m"))?.[1] ?? 0);
    return {
      commits: value("billing_ledger_commits"),
      syncs: value("billing_ledger_synced_writes"),
      accepted: labelled("billing_ingest_windows_total", 'outcome="accepted"'),
      batchCalls: labelled("billing_rpc_calls_total", `code="ok",procedure="${BATCH_PATH}"`),
      ledgers: labelled("billing_actors", 'kind="customer_ledgers"'),
      syncHistogram: value("billing_ledger_sync_seconds_count"),
      memtableBytes: labelled("billing_rocksdb_bytes", 'kind="memtable"'),
    };
  };
  const before = await scrape();
  const m = nextMetric();
  const res = await rawRequest(server.baseUrl, BATCH_PATH, { headers: JSON_HEADERS, body: batchJson([m]) });
  assert.equal(res.status, 200, res.text);
  stored.push(m);
  const after = await scrape();
  assert.ok(after.commits >= before.commits + 1, `commits ${before.commits} -> ${after.commits}`);
  assert.ok(after.syncs >= before.syncs + 1, `synced writes ${before.syncs} -> ${after.syncs}`);
  assert.ok(after.syncs <= after.commits, "never more fsyncs than commits");
  assert.ok(after.accepted >= before.accepted + 1, `accepted windows ${before.accepted} -> ${after.accepted}`);
  assert.ok(after.batchCalls >= before.batchCalls + 1, `ok SendMetricsBatch calls ${before.batchCalls} -> ${after.batchCalls}`);
  // Every synced write is timed; the ledger actors and RocksDB report real state.
  assert.equal(after.syncHistogram, after.syncs, "one fsync latency sample per synced write");
  assert.ok(after.memtableBytes > 0, "RocksDB memtable size is reported");
  // A new customer spawns one more ledger actor.
  const other = makeMetric({ customerId: `${customerId}-new-ledger`, vmId: "vm-http", minutesAgo: 1 });
  const res2 = await rawRequest(server.baseUrl, BATCH_PATH, { headers: JSON_HEADERS, body: batchJson([other]) });
  assert.equal(res2.status, 200, res2.text);
  const last = await scrape();
  assert.equal(last.ledgers, after.ledgers + 1, `customer ledgers ${after.ledgers} -> ${last.ledgers}`);
});

test("the server keeps serving on a connection after errors", async () => {
  // Errors above did not wedge it: a normal call still works.
  const m = nextMetric();
  const clients = collectorClients(server.baseUrl);
  assert.deepEqual(summarize(await clients.json.sendMetricsBatch(batchRequest([m]))), expectedSummary(1));
  // Changing a value after a duplicate check also still conflicts.
  const conflict = withFields(m, { cpuTimeNanos: m.cpuTimeNanos + 1n });
  assert.deepEqual(summarize(await clients.binary.sendMetricsBatch(batchRequest([conflict]))), expectedSummary(1, { rejections: { 0: "REJECT_REASON_CONFLICTING_DUPLICATE" } }));
  stored.push(m);
});

test("SIGTERM: exit code 0, the port is closed, and only the accepted windows are stored", async () => {
  const { code, signal } = await server.stop({ signal: "SIGTERM" });
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, `billingd stderr:\n${server.stderr}`);
  await assert.rejects(rawRequest(server.baseUrl, "/healthz", { method: "GET", timeoutMs: 2000 }), /ECONNREFUSED|ECONNRESET/);
  assertStoredExactly(await dumpWindows(server.dataDir, customerId), stored, `customer ${customerId}`);
});
