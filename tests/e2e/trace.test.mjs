// W3C traceparent propagation: each finished call is one JSON log line, and
// a call carrying a valid `traceparent` logs its trace id, the caller's span
// id and a new span id of ours, so logs join the caller's trace.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { batchRequest } from "./lib/batch.mjs";
import { collectorClients, Code, expectConnectError } from "./lib/clients.mjs";
import { makeMetric, uniqueId } from "./lib/metrics.mjs";
import { startServer } from "./lib/server.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.cleanup();
});

const withHeaders = (headers) => ({
  interceptors: [
    (next) => async (req) => {
      for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
      return next(req);
    },
  ],
});

// The JSON log lines of finished calls, once `count` of them match `filter`.
async function callLines(filter, count = 1) {
  for (let i = 0; i < 100; i++) {
    const lines = server.stderr
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line))
      .filter((entry) => entry.msg === "call" && filter(entry));
    if (lines.length >= count) return lines;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`no call log line matched within 2 s:\n${server.stderr.slice(-2000)}`);
}

test("a call with a traceparent logs its trace id, the caller's span and a new span of ours", async () => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const parentId = "00f067aa0ba902b7";
  const clients = collectorClients(server.baseUrl, withHeaders({ traceparent: `00-${traceId}-${parentId}-01` }));
  await clients.binary.sendMetricsBatch(batchRequest([makeMetric({ customerId: uniqueId("cust-trace") })]));
  const [line] = await callLines((entry) => entry.trace_id === traceId);
  assert.equal(line.procedure, "/billing.v1.BillingCollectorService/SendMetricsBatch");
  assert.equal(line.code, "ok");
  assert.equal(line.parent_id, parentId);
  assert.match(line.span_id, /^[0-9a-f]{16}$/);
  assert.notEqual(line.span_id, parentId);
  assert.equal(line.sampled, "true");
  assert.match(line.duration_us, /^\d+$/);
  assert.match(line.ts, /^\d{4}-\d\d-\d\dT/);
});

test("failed calls are logged with their code and trace too", async () => {
  const traceId = "0af7651916cd43dd8448eb211c80319c";
  const clients = collectorClients(server.baseUrl, withHeaders({ traceparent: `00-${traceId}-b7ad6b7169203331-00` }));
  await expectConnectError(clients.json.sendMetricsBatch({ batchId: "", metrics: [] }), Code.InvalidArgument);
  const [line] = await callLines((entry) => entry.trace_id === traceId);
  assert.equal(line.code, "invalid_argument");
  assert.equal(line.sampled, "false");
});

test("calls without, or with an invalid, traceparent are logged without trace fields", async () => {
  const before = (await callLines(() => true)).length;
  const plain = collectorClients(server.baseUrl);
  await plain.binary.sendMetricsBatch(batchRequest([makeMetric({ customerId: uniqueId("cust-notrace") })]));
  const invalid = collectorClients(server.baseUrl, withHeaders({ traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01" }));
  await invalid.binary.sendMetricsBatch(batchRequest([makeMetric({ customerId: uniqueId("cust-badtrace") })]));
  const lines = await callLines(() => true, before + 2);
  for (const line of lines.slice(before)) {
    assert.equal(line.trace_id, undefined, JSON.stringify(line));
    assert.equal(line.span_id, undefined, JSON.stringify(line));
  }
});
