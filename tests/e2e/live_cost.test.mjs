// Cost to date on StreamLiveUsage (UsageUpdate.month_to_date_cost) from the
// real billingd: after every acknowledged ingest the stream's cost equals the
// usage subtotal of this month's draft invoice (GetInvoice) at that point,
// under a plan with graduated tiers and a region multiplier, and across a
// rate change that takes effect inside the month (and inside an hour). The
// first figure is also worked out here, independently, from what was sent.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { collectorClients, invoiceClient, queryClient } from "./lib/clients.mjs";
import { batchRequest } from "./lib/batch.mjs";
import { ANCHOR_MS, makeMetric, MINUTE_MS, ts, uniqueId } from "./lib/metrics.mjs";
import { BYTES_PER_GB, DIM, lineAmount, money, NS_PER_HOUR } from "./lib/pricing.mjs";
import { startServer } from "./lib/server.mjs";
import { next } from "./lib/stream.mjs";

const servers = [];
after(async () => {
  for (const s of servers) await s.cleanup();
});

const tsMs = (t) => Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);
const now = new Date(ANCHOR_MS);
const MONTH_START_MS = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
const inThisMonth = (m) => tsMs(m.windowStart) >= MONTH_START_MS;


// Tier 1: the first 0.01 core-hours at 0.05, then 0.02; network tx 0.09 per GB;
// eu-west-1 costs ×1.25.
const TIER_BOUND_NS = NS_PER_HOUR / 100n;
const PLAN = {
  effectiveFrom: ts(MONTH_START_MS),
  prices: [
    { dimension: DIM.cpu, tiers: [{ upTo: "0.01", price: "0.05" }, { price: "0.02" }] },
    { dimension: DIM.network_tx, tiers: [{ price: "0.09" }] },
  ],
  regionMultipliers: { "eu-west-1": "1.25" },
};

let vm = 0;
function windows(customerId, region, minutesAgo) {
  vm += 1;
  return minutesAgo.map((m) => makeMetric({ customerId, region, vmId: `vm-${vm}`, minutesAgo: m }));
}

test("every update's cost to date equals the draft invoice's usage subtotal", async () => {
  const server = await startServer();
  servers.push(server);
  const { binary: collector } = collectorClients(server.baseUrl);
  const invoices = invoiceClient(server.baseUrl);
  const customerId = uniqueId("live-cost");
  await invoices.setCustomerPlan({ customerId, version: PLAN });

  const abort = new AbortController();
  const stream = queryClient(server.baseUrl).streamLiveUsage({ customerId }, { signal: abort.signal })[Symbol.asyncIterator]();
  const snapshot = await next(stream, "the snapshot");
  assert.equal(snapshot.snapshot, true);
  assert.equal(snapshot.monthToDateCost, "0", "a plan and no usage yet: nothing owed");

  const draftUsageSubtotal = async () =>
    (await invoices.getInvoice({ customerId, periodStart: ts(MONTH_START_MS) })).invoice.usageSubtotal;
  async function ingest(region, metrics) {
    const response = await collector.sendMetricsBatch(batchRequest(metrics, { region }));
    assert.equal(response.acceptedCount, metrics.length);
    const update = await next(stream, `the update after ${metrics.length} windows in ${region}`);
    assert.equal(update.snapshot, false);
    assert.equal(update.monthToDateCost, await draftUsageSubtotal(), "stream cost = draft usage subtotal");
    return update;
  }

  // First ingest, worked out here: us-east-1 (×1).
  const first = windows(customerId, "us-east-1", [2, 3, 4, 5]).filter(inThisMonth);
  if (first.length > 0) {
    const cpu = first.reduce((total, m) => total + m.cpuTimeNanos, 0n);
    const tx = first.reduce((total, m) => total + m.networkTxBytes, 0n);
    const inTier1 = cpu < TIER_BOUND_NS ? cpu : TIER_BOUND_NS;
    const expected =
      lineAmount(inTier1, "0.05", NS_PER_HOUR) +
      lineAmount(cpu - inTier1, "0.02", NS_PER_HOUR) +
      (tx > 0n ? lineAmount(tx, "0.09", BYTES_PER_GB) : 0n);
    const update = await ingest("us-east-1", first);
    assert.equal(update.monthToDateCost, money(expected));
    assert.notEqual(update.monthToDateCost, "0");
  }

  // Another region with its multiplier, and more of the first.
  await ingest("eu-west-1", windows(customerId, "eu-west-1", [2, 3, 4]));
  const costBeforeChange = (await ingest("us-east-1", windows(customerId, "us-east-1", [6, 7]))).monthToDateCost;

  // A rate change 30 minutes and 30 seconds ago (inside an hour): cpu at 0.5.
  const changeMs = Math.max(MONTH_START_MS, ANCHOR_MS - 30 * MINUTE_MS - 30_000);
  await invoices.setCustomerPlan({
    customerId,
    version: { ...PLAN, effectiveFrom: ts(changeMs), prices: [{ dimension: DIM.cpu, tiers: [{ price: "0.5" }] }] },
  });
  // Windows on both sides of the change, then more after it.
  const afterChange = await ingest("eu-west-1", windows(customerId, "eu-west-1", [20, 29, 30, 31, 40]));
  assert.notEqual(afterChange.monthToDateCost, costBeforeChange);
  await ingest("us-east-1", windows(customerId, "us-east-1", [8, 9, 10, 31, 32]));
  const last = await ingest("eu-west-1", windows(customerId, "eu-west-1", [5, 6]));

  // A new subscriber's snapshot is computed from the ledger: the same figure.
  const again = queryClient(server.baseUrl).streamLiveUsage({ customerId }, { signal: abort.signal })[Symbol.asyncIterator]();
  const second = await next(again, "a second snapshot");
  assert.equal(second.monthToDateCost, last.monthToDateCost);
  assert.equal(second.monthToDateCost, await draftUsageSubtotal());

  // A plan change no ingest has shown yet: a subscriber arriving while others
  // stream gets the cost under the new plan.
  await invoices.setCustomerPlan({
    customerId,
    version: { ...PLAN, effectiveFrom: ts(changeMs), prices: [{ dimension: DIM.cpu, tiers: [{ price: "0.75" }] }] },
  });
  const third = await next(queryClient(server.baseUrl).streamLiveUsage({ customerId }, { signal: abort.signal })[Symbol.asyncIterator](), "a third snapshot");
  assert.notEqual(third.monthToDateCost, last.monthToDateCost);
  assert.equal(third.monthToDateCost, await draftUsageSubtotal());
  abort.abort();
});

test("without a plan the cost to date is empty, not zero", async () => {
  const server = await startServer();
  servers.push(server);
  const customerId = uniqueId("no-plan");
  const abort = new AbortController();
  const stream = queryClient(server.baseUrl).streamLiveUsage({ customerId }, { signal: abort.signal })[Symbol.asyncIterator]();
  assert.equal((await next(stream, "the snapshot")).monthToDateCost, "");
  const { binary: collector } = collectorClients(server.baseUrl);
  await collector.sendMetricsBatch(batchRequest(windows(customerId, "us-east-1", [2])));
  assert.equal((await next(stream, "the update")).monthToDateCost, "");
  abort.abort();
});
