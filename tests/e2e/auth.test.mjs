// Authentication, scopes and customer isolation against the real billingd:
// every kind of token tries every kind of call, including other customers'.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { bearer, makeTokens, sha256Hex, tokensFileArg } from "./lib/auth.mjs";
import { batchRequest, expectedSummary, summarize } from "./lib/batch.mjs";
import { adminClient, collectorClients, Code, expectConnectError, invoiceClient, metaldClients, queryClient } from "./lib/clients.mjs";
import { rawRequest } from "./lib/http.mjs";
import { makeMetric, ts, uniqueId } from "./lib/metrics.mjs";
import { makeTempDir, runBillingd, startServer } from "./lib/server.mjs";

const tokens = makeTokens({
  "metald-all": "ingest",
  "metald-eu": "ingest:eu-west-1,ingest:eu-north-1",
  "acme-portal": "customer:acme",
  support: "admin",
});
const as = (name) => bearer(tokens[name].token);
// Yesterday and today, by day: covers every window sent in this test.
const DAY_MS = 86_400_000;
const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
const usageRequest = (customerId) => ({ customerId, startTime: ts(today - DAY_MS), endTime: ts(today + DAY_MS), granularity: 2 });
const windowRequest = (customerId) => ({ customerId, startTime: ts(today - DAY_MS), endTime: ts(today + DAY_MS) });
// One window each for acme and globex, sent by metald before the isolation tests.
const stored = { acme: makeMetric({ customerId: "acme", vmId: "vm-acme" }), globex: makeMetric({ customerId: "globex", vmId: "vm-globex" }) };

let server;
before(async () => {
  server = await startServer({ args: [tokensFileArg(tokens)] });
  const metald = collectorClients(server.baseUrl, as("metald-all"));
  assert.deepEqual(summarize(await metald.binary.sendMetricsBatch(batchRequest([stored.acme, stored.globex]))), expectedSummary(2));
});
after(async () => {
  await server?.cleanup();
});

test("billingd refuses to start without --auth-tokens-file or --insecure-no-auth", async () => {
  const dataDir = makeTempDir();
  await assert.rejects(runBillingd(["--listen=127.0.0.1:0", `--data-dir=${dataDir}`], { timeoutMs: 15_000 }), /no authentication configured/);
  await assert.rejects(
    runBillingd(["--listen=127.0.0.1:0", `--data-dir=${dataDir}`, "--insecure-no-auth", tokensFileArg(tokens)], { timeoutMs: 15_000 }),
    /exclude each other/,
  );
});

test("a malformed token file is refused naming the line", async () => {
  const bad = makeTokens({ x: "ingest,superuser" });
  await assert.rejects(runBillingd(["--listen=127.0.0.1:0", `--data-dir=${makeTempDir()}`, tokensFileArg(bad)], { timeoutMs: 15_000 }), /line 2: unknown scope 'superuser'/);
});

test("the insecure dev mode is explicit and logged loudly", async () => {
  const dev = await startServer({ args: ["--insecure-no-auth"] });
  try {
    assert.match(dev.stderr, /INSECURE: --insecure-no-auth/);
    const response = await collectorClients(dev.baseUrl).binary.sendMetricsBatch(batchRequest([makeMetric({ customerId: uniqueId("dev") })]));
    assert.equal(response.acceptedCount, 1);
  } finally {
    await dev.cleanup();
  }
});

test("missing or unknown credentials are unauthenticated on every service", async () => {
  for (const options of [{}, bearer("not-a-token"), bearer(sha256Hex(tokens.support.token))]) {
    await expectConnectError(collectorClients(server.baseUrl, options).binary.sendMetricsBatch(batchRequest([makeMetric()])), Code.Unauthenticated);
    await expectConnectError(collectorClients(server.baseUrl, options).json.sendMetrics({ metrics: makeMetric() }), Code.Unauthenticated);
    await expectConnectError(adminClient(server.baseUrl, options).createBackup({}), Code.Unauthenticated);
    await expectConnectError(queryClient(server.baseUrl, options).getCustomerUsage(usageRequest("acme")), Code.Unauthenticated);
    await expectConnectError(queryClient(server.baseUrl, options).getBillingWindow(windowRequest("acme")), Code.Unauthenticated);
    await expectConnectError(adminClient(server.baseUrl, options).applyRetention({}), Code.Unauthenticated);
    await expectConnectError(adminClient(server.baseUrl, options).verifyAuditChain({}), Code.Unauthenticated);
  }
  const basic = await rawRequest(server.baseUrl, "/billing.v1.BillingAdminService/CreateBackup", {
    headers: { "content-type": "application/json", authorization: `Basic ${Buffer.from("u:p").toString("base64")}` },
    body: "{}",
  });
  assert.equal(basic.status, 401);
  assert.equal(basic.json.code, "unauthenticated");
});

test("health, readiness and metrics stay open without credentials", async () => {
  for (const path of ["/healthz", "/readyz", "/metrics"]) {
    const res = await rawRequest(server.baseUrl, path, { method: "GET" });
    assert.equal(res.status, 200, path);
  }
});

test("an ingest token sends metrics of any customer and region, and nothing else", async () => {
  const clients = collectorClients(server.baseUrl, as("metald-all"));
  const metrics = [makeMetric({ customerId: uniqueId("c1") }), makeMetric({ customerId: uniqueId("c2") })];
  assert.deepEqual(summarize(await clients.binary.sendMetricsBatch(batchRequest(metrics))), expectedSummary(2));
  const asia = makeMetric({ customerId: uniqueId("c3"), region: "ap-south-1" });
  assert.deepEqual(summarize(await clients.json.sendMetricsBatch(batchRequest([asia], { region: "ap-south-1" }))), expectedSummary(1));
  await expectConnectError(adminClient(server.baseUrl, as("metald-all")).createBackup({}), Code.PermissionDenied);
  await expectConnectError(queryClient(server.baseUrl, as("metald-all")).getCustomerUsage(usageRequest(metrics[0].customerId)), Code.PermissionDenied);
  await expectConnectError(queryClient(server.baseUrl, as("metald-all")).getBillingWindow(windowRequest("acme")), Code.PermissionDenied);
  await expectConnectError(adminClient(server.baseUrl, as("metald-all")).applyRetention({}), Code.PermissionDenied);
});

test("a region-restricted ingest token is refused for the whole call when one metric is outside its regions", async () => {
  const eu = collectorClients(server.baseUrl, as("metald-eu"));
  const customerId = uniqueId("cust-eu");
  const inside = makeMetric({ customerId, vmId: "vm-eu", region: "eu-west-1" });
  const outside = makeMetric({ customerId, vmId: "vm-us", region: "us-east-1" });
  const err = await expectConnectError(eu.binary.sendMetricsBatch(batchRequest([inside, outside], { region: "eu-west-1" })), Code.PermissionDenied);
  assert.match(err.message, /us-east-1/);
  // A metric without a region takes the batch's, which is checked too.
  await expectConnectError(eu.json.sendMetricsBatch(batchRequest([{ ...inside, region: "" }], { region: "us-east-1" })), Code.PermissionDenied);
  await expectConnectError(eu.json.sendMetrics({ metrics: outside }), Code.PermissionDenied);
  // Nothing of the refused calls was stored: both windows are new to an unrestricted token.
  const all = collectorClients(server.baseUrl, as("metald-all"));
  assert.deepEqual(summarize(await all.binary.sendMetricsBatch(batchRequest([outside]))), expectedSummary(1));
  assert.deepEqual(summarize(await eu.binary.sendMetricsBatch(batchRequest([inside], { region: "eu-west-1" }))), expectedSummary(1));
  const north = makeMetric({ customerId, vmId: "vm-n", region: "eu-north-1" });
  assert.deepEqual(summarize(await eu.json.sendMetricsBatch(batchRequest([north], { region: "eu-north-1" }))), expectedSummary(1));
});

test("a customer token reads only its own customer and can neither ingest nor administer", async () => {
  const acme = queryClient(server.baseUrl, as("acme-portal"));
  const own = await acme.getCustomerUsage(usageRequest("acme"));
  assert.equal(own.customerId, "acme");
  assert.equal(own.totals.cpuTimeNanos, stored.acme.cpuTimeNanos);
  await acme.getBillingWindow(windowRequest("acme"));
  for (const other of ["globex", "acm", "acme2", "ACME", ""]) {
    const err = await expectConnectError(acme.getCustomerUsage(usageRequest(other)), Code.PermissionDenied);
    assert.match(err.message, /may not access customer/);
    assert.ok(!err.message.includes(String(stored.globex.cpuTimeNanos)));
    await expectConnectError(acme.getBillingWindow(windowRequest(other)), Code.PermissionDenied);
  }
  // It may not write usage, not even for itself: metering is metald's job.
  await expectConnectError(collectorClients(server.baseUrl, as("acme-portal")).binary.sendMetricsBatch(batchRequest([makeMetric({ customerId: "acme" })])), Code.PermissionDenied);
  await expectConnectError(collectorClients(server.baseUrl, as("acme-portal")).json.sendMetrics({ metrics: makeMetric({ customerId: "acme" }) }), Code.PermissionDenied);
  await expectConnectError(adminClient(server.baseUrl, as("acme-portal")).createBackup({}), Code.PermissionDenied);
  await expectConnectError(adminClient(server.baseUrl, as("acme-portal")).applyRetention({}), Code.PermissionDenied);
  // Nothing it tried changed acme's usage.
  assert.equal((await acme.getCustomerUsage(usageRequest("acme"))).totals.cpuTimeNanos, stored.acme.cpuTimeNanos);
});

test("an admin token reads any customer and runs admin calls, but does not ingest", async () => {
  const support = queryClient(server.baseUrl, as("support"));
  for (const customer of ["acme", "globex"]) {
    const usage = await support.getCustomerUsage(usageRequest(customer));
    assert.equal(usage.totals.cpuTimeNanos, stored[customer].cpuTimeNanos);
    await support.getBillingWindow(windowRequest(customer));
  }
  // Past the auth check: this server has no --backup-dir; retention runs.
  await expectConnectError(adminClient(server.baseUrl, as("support")).createBackup({}), Code.FailedPrecondition);
  assert.ok((await adminClient(server.baseUrl, as("support")).applyRetention({})).retentionDays > 0);
  await expectConnectError(collectorClients(server.baseUrl, as("support")).binary.sendMetricsBatch(batchRequest([makeMetric()])), Code.PermissionDenied);
});

test("invoices: admin sets plans and finalizes; a customer reads only its own invoices and plan", async () => {
  const now = new Date();
  const thisMonth = ts(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const plan = { customerId: "acme", version: { effectiveFrom: ts(Date.UTC(2026, 0, 1)), prices: [{ dimension: 1, tiers: [{ price: "0.05" }] }] } };
  const support = invoiceClient(server.baseUrl, as("support"));
  await support.setCustomerPlan(plan);

  const acme = invoiceClient(server.baseUrl, as("acme-portal"));
  const draft = await acme.getInvoice({ customerId: "acme", periodStart: thisMonth });
  assert.equal(draft.invoice.customerId, "acme");
  await acme.listInvoices({ customerId: "acme" });
  await acme.getCustomerPlan({ customerId: "acme" });
  for (const other of ["globex", "acm", ""]) {
    await expectConnectError(acme.getInvoice({ customerId: other, periodStart: thisMonth }), Code.PermissionDenied);
    await expectConnectError(acme.listInvoices({ customerId: other }), Code.PermissionDenied);
    await expectConnectError(acme.getCustomerPlan({ customerId: other }), Code.PermissionDenied);
  }
  // Prices and finalization are the operator's: a customer may change neither.
  await expectConnectError(acme.setCustomerPlan(plan), Code.PermissionDenied);
  await expectConnectError(acme.finalizeInvoices({ periodStart: thisMonth }), Code.PermissionDenied);
  await expectConnectError(invoiceClient(server.baseUrl, as("metald-all")).getInvoice({ customerId: "acme", periodStart: thisMonth }), Code.PermissionDenied);
  await expectConnectError(invoiceClient(server.baseUrl).getInvoice({ customerId: "acme", periodStart: thisMonth }), Code.Unauthenticated);
  // The plan the customer could not change is still the admin's.
  const stored = await support.getCustomerPlan({ customerId: "acme" });
  assert.equal(stored.versions.length, 1);
});

test("metald's BillingService needs an ingest token for its region; others are refused", async () => {
  const start = { vmId: uniqueId("vm-metald"), customerId: "acme", startTime: BigInt(Date.now() - 60_000) * 1_000_000n };
  assert.equal((await metaldClients(server.baseUrl, as("metald-all")).binary.notifyVmStarted(start)).success, true);
  await expectConnectError(metaldClients(server.baseUrl).json.notifyVmStarted(start), Code.Unauthenticated);
  await expectConnectError(metaldClients(server.baseUrl, bearer("not-a-token")).json.notifyVmStarted(start), Code.Unauthenticated);
  // metald's VMs are filed under --metald-region ("default"), not an eu region.
  await expectConnectError(metaldClients(server.baseUrl, as("metald-eu")).binary.notifyVmStarted(start), Code.PermissionDenied);
  for (const name of ["acme-portal", "support"]) {
    const client = metaldClients(server.baseUrl, as(name)).binary;
    await expectConnectError(client.sendHeartbeat({ instanceId: "metald-1", activeVms: [] }), Code.PermissionDenied);
    await expectConnectError(client.getActiveBillingSessions({ instanceId: "metald-1" }), Code.PermissionDenied);
  }
});

// The first message of a StreamLiveUsage call (then the stream is cancelled),
// or the error that ends it first.
async function firstUpdate(options, customerId) {
  const controller = new AbortController();
  const stream = queryClient(server.baseUrl, options).streamLiveUsage({ customerId }, { signal: controller.signal });
  try {
    for await (const update of stream) return update;
    return undefined;
  } finally {
    controller.abort();
  }
}

test("StreamLiveUsage: a customer streams only its own usage; admin any; others are refused", async () => {
  const own = await firstUpdate(as("acme-portal"), "acme");
  assert.equal(own.customerId, "acme");
  assert.equal(own.snapshot, true);
  assert.equal(own.monthToDate.cpuTimeNanos, stored.acme.cpuTimeNanos);
  assert.equal((await firstUpdate(as("support"), "globex")).monthToDate.cpuTimeNanos, stored.globex.cpuTimeNanos);
  for (const [options, customer, code] of [
    [as("acme-portal"), "globex", Code.PermissionDenied],
    [as("metald-all"), "acme", Code.PermissionDenied],
    [as("metald-eu"), "acme", Code.PermissionDenied],
    [{}, "acme", Code.Unauthenticated],
    [bearer("not-a-token"), "acme", Code.Unauthenticated],
  ]) {
    await expectConnectError(firstUpdate(options, customer), code);
  }
});

test("permission_denied and unauthenticated map to HTTP 403 and 401", async () => {
  const denied = await rawRequest(server.baseUrl, "/billing.v1.BillingAdminService/CreateBackup", {
    headers: { "content-type": "application/json", authorization: `Bearer ${tokens["acme-portal"].token}` },
    body: "{}",
  });
  assert.equal(denied.status, 403);
  assert.equal(denied.json.code, "permission_denied");
  assert.ok(!denied.text.includes(tokens["acme-portal"].token), "the token is never echoed");
});
