// Backpressure at the door: per-source rate limits and the bound on batches
// in flight answer resource_exhausted (HTTP 429 with Retry-After) at once,
// and a refused batch stores nothing, so retrying it later is safe.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { bearer, makeTokens, tokensFileArg } from "./lib/auth.mjs";
import { batchRequest, expectedSummary, summarize } from "./lib/batch.mjs";
import { collectorClients, Code, ConnectError } from "./lib/clients.mjs";
import { rawRequest } from "./lib/http.mjs";
import { makeMetric, metricToJson, uniqueId } from "./lib/metrics.mjs";
import { startServer } from "./lib/server.mjs";

const servers = [];
after(async () => {
  for (const server of servers) await server.cleanup();
});

const batchJson = (metrics) => JSON.stringify({ batchId: uniqueId("b"), instanceId: "metald-bp", region: "us-east-1", metrics: metrics.map(metricToJson) });

test("a source over its rate gets 429 resource_exhausted with Retry-After; other sources are unaffected", async () => {
  const tokens = makeTokens({ "metald-a": "ingest", "metald-b": "ingest" });
  const server = await startServer({ args: [tokensFileArg(tokens), "--rate-limit-per-second=1", "--rate-limit-burst=2"] });
  servers.push(server);
  const send = (name, metrics) =>
    rawRequest(server.baseUrl, "/billing.v1.BillingCollectorService/SendMetricsBatch", {
      headers: { "content-type": "application/json", authorization: `Bearer ${tokens[name].token}` },
      body: batchJson(metrics),
    });
  const customerId = uniqueId("cust-rate");
  const metrics = [0, 1, 2].map((i) => makeMetric({ customerId, vmId: `vm-${i}` }));
  // At once, so that no token is refilled in between however loaded the
  // machine is: the burst of two passes, the third is refused.
  const answers = await Promise.all(metrics.map((metric) => send("metald-a", [metric])));
  const passed = answers.filter((answer) => answer.status === 200);
  const limitedAt = answers.findIndex((answer) => answer.status !== 200);
  assert.equal(passed.length, 2, answers.map((answer) => answer.text).join("\n"));
  const limited = answers[limitedAt];
  assert.equal(limited.status, 429, limited.text);
  assert.equal(limited.json.code, "resource_exhausted");
  assert.match(limited.json.message, /rate limit of source 'metald-a' exceeded; retry after \d+ ms/);
  assert.equal(limited.headers["retry-after"], "1");
  // Another token has its own bucket; the refused window was not stored.
  const other = await send("metald-b", [metrics[limitedAt]]);
  assert.equal(other.status, 200, other.text);
  assert.equal(other.json.acceptedCount, 1);
  // After the hinted wait the first source may send again.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const retried = await send("metald-a", [metrics[(limitedAt + 1) % 3]]);
  assert.equal(retried.status, 200, retried.text);
  assert.equal(retried.json.duplicateCount, 1);
});

test("without auth the rate limit is per peer address", async () => {
  const server = await startServer({ args: ["--rate-limit-per-second=1", "--rate-limit-burst=1"] });
  servers.push(server);
  const clients = collectorClients(server.baseUrl);
  const customerId = uniqueId("cust-rate-ip");
  // A new connection from the same address shares the bucket; both calls at
  // once, so no token is refilled in between.
  const fresh = collectorClients(server.baseUrl);
  const outcomes = await Promise.all([
    clients.binary.sendMetricsBatch(batchRequest([makeMetric({ customerId, vmId: "vm-1" })])),
    fresh.json.sendMetricsBatch(batchRequest([makeMetric({ customerId, vmId: "vm-2" })])),
  ].map((call) => call.then((ok) => ({ ok }), (err) => ({ err }))));
  assert.equal(outcomes.filter((outcome) => outcome.ok).length, 1, JSON.stringify(outcomes));
  const err = outcomes.find((outcome) => outcome.err).err;
  assert.ok(err instanceof ConnectError, String(err));
  assert.equal(err.code, Code.ResourceExhausted);
  assert.match(err.message, /source '127\.0\.0\.1'/);
});

test("beyond --max-inflight-batches calls are refused at once, and a retry stores them exactly once", async () => {
  // Two io threads decode two requests at the same moment; storing a batch
  // (an fsync at least) outlasts that, so concurrent calls meet the bound.
  const server = await startServer({ args: ["--max-inflight-batches=1", "--io-threads=2"] });
  servers.push(server);
  const clients = collectorClients(server.baseUrl);
  const refused = [];
  // Rounds of 16 concurrent batches of 300 windows (of 300 customers) until
  // one is refused; timing decides which, so a round may see none (bounded).
  for (let round = 0; round < 5 && refused.length === 0; round++) {
    const batches = Array.from({ length: 16 }, (_, b) =>
      batchRequest(Array.from({ length: 300 }, (_, i) => makeMetric({ customerId: `cust-inflight-${round}-${i}`, vmId: `vm-${b}` }))),
    );
    const outcomes = await Promise.all(batches.map((batch) => clients.binary.sendMetricsBatch(batch).then((r) => ({ ok: r }), (e) => ({ err: e }))));
    outcomes.forEach((outcome, b) => {
      if (outcome.ok) {
        assert.deepEqual(summarize(outcome.ok), expectedSummary(300), JSON.stringify(outcome.ok.results));
      } else {
        assert.ok(outcome.err instanceof ConnectError, String(outcome.err));
        assert.equal(outcome.err.code, Code.ResourceExhausted, outcome.err.message);
        assert.match(outcome.err.message, /too many batches/);
        refused.push(batches[b]);
      }
    });
    assert.ok(refused.length < batches.length, "every call was refused");
  }
  assert.ok(refused.length > 0, "no call was refused in 5 rounds of 16 concurrent calls for 1 slot");
  // Sequential retries of the refused batches are all new windows: nothing of them was stored before.
  for (const batch of refused) assert.deepEqual(summarize(await clients.binary.sendMetricsBatch(batch)), expectedSummary(300));
});
