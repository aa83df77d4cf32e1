// A real OTLP/HTTP trace receiver on loopback for the tests: it decodes each
// POST /v1/traces body with the protobuf types generated from the official
// opentelemetry-proto by @opentelemetry/otlp-transformer (protobufjs), not
// with billingd's own subset, and keeps the spans it got. `mode: "hang"`
// accepts requests and never answers them (a collector that is too slow).
import { createRequire } from "node:module";
import http from "node:http";

const require = createRequire(import.meta.url);
// The transformer's generated root (it has no "exports" map; this is its build output).
const root = require("@opentelemetry/otlp-transformer/build/src/generated/root.js");
const collector = root.opentelemetry.proto.collector.trace.v1;

const hex = (bytes) => Buffer.from(bytes ?? []).toString("hex");

function anyValue(value) {
  if (!value) return undefined;
  if (value.stringValue != null) return value.stringValue;
  if (value.boolValue != null) return value.boolValue;
  if (value.intValue != null) {
    return typeof value.intValue === "object" ? Number(value.intValue.toString()) : Number(value.intValue);
  }
  return undefined;
}

export function attributeMap(keyValues) {
  return Object.fromEntries((keyValues ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

const nanos = (value) => BigInt(value?.toString() ?? "0");

export async function startOtlpReceiver({ mode = "ok" } = {}) {
  const spans = [];
  const requests = [];  // {contentType, path} of every request
  const hanging = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      requests.push({ path: req.url, method: req.method, contentType: req.headers["content-type"] });
      if (mode === "hang") {
        hanging.add(res);
        return;
      }
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      const request = collector.ExportTraceServiceRequest.decode(Buffer.concat(chunks));
      for (const resourceSpans of request.resourceSpans) {
        const resource = attributeMap(resourceSpans.resource?.attributes);
        for (const scopeSpans of resourceSpans.scopeSpans) {
          for (const span of scopeSpans.spans) {
            spans.push({
              traceId: hex(span.traceId),
              spanId: hex(span.spanId),
              parentSpanId: hex(span.parentSpanId),
              name: span.name,
              kind: span.kind,
              flags: span.flags ?? 0,
              start: nanos(span.startTimeUnixNano),
              end: nanos(span.endTimeUnixNano),
              attributes: attributeMap(span.attributes),
              statusCode: span.status?.code ?? 0,
              resource,
              scope: scopeSpans.scope?.name,
            });
          }
        }
      }
      const answer = collector.ExportTraceServiceResponse.encode({}).finish();
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end(Buffer.from(answer));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${server.address().port}`,
    spans,
    requests,
    get hanging() {
      return hanging.size;
    },
    close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

// Polls until `predicate(receiver.spans)` holds (at most `timeoutMs`).
export async function waitForSpans(receiver, predicate, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate(receiver.spans)) return receiver.spans;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(receiver.spans.map((s) => [s.traceId, s.name]))}`);
}

// OTLP SpanKind numbers.
export const SpanKind = { INTERNAL: 1, SERVER: 2 };
