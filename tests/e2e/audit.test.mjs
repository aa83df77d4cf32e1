// The tamper-evident audit chain end to end: every ingest batch leaves one
// audit entry per customer part (and one per refused conflicting re-send),
// chained by hashes; VerifyAuditChain (admin scope) and the offline
// `billingd --verify-audit` both walk it. Corruption is detected in the
// storage unit tests, which damage entries with raw RocksDB.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { bearer, makeTokens, tokensFileArg } from "./lib/auth.mjs";
import { batchRequest, expectedSummary, summarize } from "./lib/batch.mjs";
import { adminClient, collectorClients, Code, expectConnectError } from "./lib/clients.mjs";
import { makeMetric, uniqueId, withFields } from "./lib/metrics.mjs";
import { runBillingd, startServer } from "./lib/server.mjs";

const servers = [];
after(async () => {
  for (const server of servers) await server.cleanup();
});

test("ingest batches are chained in the audit log, verified online and offline", async () => {
  const tokens = makeTokens({ metald: "ingest", support: "admin", portal: "customer:acme" });
  const server = await startServer({ args: [tokensFileArg(tokens)] });
  servers.push(server);
  const admin = adminClient(server.baseUrl, bearer(tokens.support.token));
  const empty = await admin.verifyAuditChain({});
  assert.equal(empty.intact, true);
  assert.equal(empty.entriesVerified, 0n);

  const clients = collectorClients(server.baseUrl, bearer(tokens.metald.token));
  const [a, b, c] = [uniqueId("cust-a"), uniqueId("cust-b"), uniqueId("cust-c")];
  const first = [makeMetric({ customerId: a }), makeMetric({ customerId: b }), makeMetric({ customerId: c })];
  const batchIds = [uniqueId("batch-audit"), uniqueId("batch-audit")];
  const batchIdOf = (i) => batchIds[i];
  assert.deepEqual(summarize(await clients.binary.sendMetricsBatch(batchRequest(first, { batchId: batchIds[0] }))), expectedSummary(3));
  // A duplicate for a, a conflicting re-send for b: 2 ingest entries + 1 conflict entry.
  const second = [first[0], withFields(first[1], { networkTxBytes: first[1].networkTxBytes + 1n })];
  const response = await clients.json.sendMetricsBatch(batchRequest(second, { batchId: batchIds[1] }));
  assert.deepEqual(summarize(response), expectedSummary(2, { duplicates: [0], rejections: { 1: "REJECT_REASON_CONFLICTING_DUPLICATE" } }));

  const verified = await admin.verifyAuditChain({});
  assert.equal(verified.intact, true, verified.problem);
  assert.equal(verified.entriesVerified, 6n);
  assert.equal(verified.problem, "");
  assert.match(verified.headHash, /^[0-9a-f]{64}$/);
  assert.ok(verified.headSequence > 0n);

  for (const name of ["metald", "portal"]) {
    await expectConnectError(adminClient(server.baseUrl, bearer(tokens[name].token)).verifyAuditChain({}), Code.PermissionDenied);
  }
  await expectConnectError(adminClient(server.baseUrl).verifyAuditChain({}), Code.Unauthenticated);

  const { code } = await server.stop();
  assert.equal(code, 0, server.stderr);
  const { stdout } = await runBillingd([`--data-dir=${server.dataDir}`, "--verify-audit"]);
  const offline = JSON.parse(stdout);
  assert.equal(offline.intact, true);
  assert.equal(offline.entries_verified, "6");
  assert.equal(offline.head_hash, verified.headHash);

  // The trail itself: who sent what, as authenticated (the token's name).
  const trail = async (customer) =>
    (await runBillingd([`--data-dir=${server.dataDir}`, `--dump-audit=${customer}`])).stdout
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line));
  const [firstBatch, secondBatch] = [batchIdOf(0), batchIdOf(1)];
  assert.deepEqual(
    (await trail(a)).map((r) => [r.kind, r.batch_id, r.caller, r.instance_id, r.accepted, r.duplicate, r.rejected]),
    [
      ["ingest", firstBatch, "metald", "metald-e2e-1", 1, 0, 0],
      ["ingest", secondBatch, "metald", "metald-e2e-1", 0, 1, 0],
    ],
  );
  assert.deepEqual(
    (await trail(b)).map((r) => [r.kind, r.batch_id, r.accepted ?? null, r.rejected ?? null, r.vm_id ?? null]),
    [
      ["ingest", firstBatch, 1, 0, null],
      ["ingest", secondBatch, 0, 1, null],
      ["conflict", secondBatch, null, null, first[1].vmId],
    ],
  );
  assert.deepEqual((await trail(c)).map((r) => r.batch_id), [firstBatch]);
});
