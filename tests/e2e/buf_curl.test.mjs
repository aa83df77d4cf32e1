// `buf curl` (the npm @bufbuild/buf binary) as a second, independent Connect
// client: schema from protocol/, HTTP/1.1, JSON in and out.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";
import { fromJson } from "@bufbuild/protobuf";
import { batchRequest, expectedSummary, summarize } from "./lib/batch.mjs";
import { makeMetric, metricToJson, uniqueId } from "./lib/metrics.mjs";
import { BUF, PROTOCOL_DIR } from "./lib/paths.mjs";
import { SendMetricsBatchResponseSchema } from "./lib/schema.mjs";
import { startServer } from "./lib/server.mjs";

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.cleanup();
});

// Runs `buf curl --schema protocol/ --data <json> <url>`; resolves with
// {code, stdout, stderr} whatever the exit code.
// `method` is "Method" of BillingCollectorService or "Service/Method".
function bufCurl(method, data, extraArgs = []) {
  const procedure = method.includes("/") ? method : `BillingCollectorService/${method}`;
  const url = `${server.baseUrl}/billing.v1.${procedure}`;
  const args = ["curl", "--schema", PROTOCOL_DIR, "--data", JSON.stringify(data), ...extraArgs, url];
  return new Promise((resolve, reject) => {
    execFile(BUF, args, { timeout: 30_000, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") return reject(new Error(`buf ${args.join(" ")}: ${err.message}\n${stderr}`));
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

function batchJson(metrics, options) {
  const request = batchRequest(metrics, options);
  return { ...request, metrics: metrics.map(metricToJson) };
}

test("buf curl: SendMetricsBatch accepts, then reports duplicates, in proto3 JSON", async () => {
  const customerId = uniqueId("cust-bufcurl");
  const metrics = [makeMetric({ customerId, vmId: "vm-1", minutesAgo: 3 }), makeMetric({ customerId, vmId: "vm-2", minutesAgo: 3, region: "" })];

  const first = await bufCurl("SendMetricsBatch", batchJson(metrics, { region: "us-east-1" }));
  assert.equal(first.code, 0, `buf curl failed: ${first.stderr}`);
  // Zero fields are omitted in proto3 JSON: only the accepted count is there.
  assert.deepEqual(JSON.parse(first.stdout), { acceptedCount: 2 });

  const again = await bufCurl("SendMetricsBatch", batchJson(metrics, { region: "us-east-1" }));
  assert.equal(again.code, 0, `buf curl failed: ${again.stderr}`);
  const response = fromJson(SendMetricsBatchResponseSchema, JSON.parse(again.stdout));
  assert.deepEqual(summarize(response), expectedSummary(2, { duplicates: [0, 1] }));
});

test("buf curl: per-item rejection comes back with its reason and message", async () => {
  const customerId = uniqueId("cust-bufcurl");
  const metrics = [makeMetric({ customerId, vmId: "vm-1", minutesAgo: 4 }), makeMetric({ customerId, vmId: "vm-2", minutesAgo: 4, region: "eu-west-1" })];
  const res = await bufCurl("SendMetricsBatch", batchJson(metrics, { region: "us-east-1" }));
  assert.equal(res.code, 0, `buf curl failed: ${res.stderr}`);
  const json = JSON.parse(res.stdout);
  assert.equal(json.results?.[0]?.reason, "REJECT_REASON_REGION_MISMATCH", res.stdout);
  assert.equal(typeof json.results[0].message, "string");
  assert.ok(json.results[0].message.length > 0);
  assert.deepEqual(summarize(fromJson(SendMetricsBatchResponseSchema, json)), expectedSummary(2, { rejections: { 1: "REJECT_REASON_REGION_MISMATCH" } }));
});

test("buf curl: a batch without batch_id is an invalid_argument error", async () => {
  const metrics = [makeMetric({ customerId: uniqueId("cust-bufcurl"), minutesAgo: 5 })];
  const res = await bufCurl("SendMetricsBatch", batchJson(metrics, { batchId: "" }));
  // buf curl exits with the RPC code shifted left by three: invalid_argument (3) -> 24.
  assert.equal(res.code, 3 << 3, `exit code ${res.code}, stdout ${res.stdout}, stderr ${res.stderr}`);
  assert.match(res.stderr, /invalid_argument/);
});

test("buf curl: SendMetrics stores one window and answers ITEM_STATUS_ACCEPTED", async () => {
  const m = makeMetric({ customerId: uniqueId("cust-bufcurl"), minutesAgo: 6 });
  const res = await bufCurl("SendMetrics", { metrics: metricToJson(m), instanceId: "metald-e2e-1" });
  assert.equal(res.code, 0, `buf curl failed: ${res.stderr}`);
  assert.deepEqual(JSON.parse(res.stdout), { status: "ITEM_STATUS_ACCEPTED" });
});

test("buf curl: GetCustomerUsage takes enum names and RFC 3339 times, answers int64 as strings", async () => {
  const customerId = uniqueId("cust-bufcurl");
  const m = makeMetric({ customerId, vmId: "vm-1", minutesAgo: 7 });
  assert.equal((await bufCurl("SendMetrics", { metrics: metricToJson(m) })).code, 0);
  const start = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000 - 86_400_000);
  const end = new Date(start.getTime() + 2 * 86_400_000);
  const res = await bufCurl("BillingQueryService/GetCustomerUsage", {
    customerId,
    startTime: start.toISOString(),
    endTime: end.toISOString(),
    granularity: "GRANULARITY_DAY",
  });
  assert.equal(res.code, 0, `buf curl failed: ${res.stderr}`);
  const json = JSON.parse(res.stdout);
  assert.equal(json.totals.cpuTimeNanos, m.cpuTimeNanos.toString());
  assert.equal(json.totals.windowCount, "1");
  assert.equal(json.buckets.length, 2);
  assert.equal(json.buckets[0].bucketStart, start.toISOString().replace(".000Z", "Z"));
});
