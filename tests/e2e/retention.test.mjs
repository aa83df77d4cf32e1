// Raw-window retention against the real billingd: windows older than
// --raw-retention-days disappear from GetBillingWindow after ApplyRetention,
// their usage stays in the rollups, and re-sending them is refused (their
// dedup entries are gone, so accepting them could count them twice).
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { adminClient, collectorClients, Code, expectConnectError, queryClient } from "./lib/clients.mjs";
import { batchRequest, summarize } from "./lib/batch.mjs";
import { makeMetric, MINUTE_MS, ts, uniqueId } from "./lib/metrics.mjs";
import { makeTempDir, startServer } from "./lib/server.mjs";

const DAY_MS = 24 * 60 * MINUTE_MS;
const servers = [];
after(async () => {
  for (const s of servers) await s.cleanup();
});

test("retention drops old raw windows, keeps rollups and refuses re-sends past the cutoff", async () => {
  const dataDir = makeTempDir();
  const customer = uniqueId("cust-retention");
  const dayStart = Math.floor((Date.now() - 10 * DAY_MS) / DAY_MS) * DAY_MS;
  const old = makeMetric({ customerId: customer, vmId: "vm-old", windowStartMs: dayStart + 60 * MINUTE_MS, windowEndMs: dayStart + 61 * MINUTE_MS });
  const recent = makeMetric({ customerId: customer, vmId: "vm-new", minutesAgo: 5 });

  const first = await startServer({ dataDir });
  servers.push(first);
  const accepted = await collectorClients(first.baseUrl).binary.sendMetricsBatch(batchRequest([old, recent]));
  assert.equal(accepted.acceptedCount, 2);
  await first.stop();

  const second = await startServer({ dataDir, args: ["--raw-retention-days=7"] });
  servers.push(second);
  const applied = await adminClient(second.baseUrl).applyRetention({});
  assert.equal(applied.retentionDays, 7);
  const cutoffMs = Number(applied.cutoff.seconds) * 1000;
  assert.ok(Math.abs(cutoffMs - (Date.now() - 7 * DAY_MS)) < 60_000, "cutoff is now - 7 days");

  const query = queryClient(second.baseUrl);
  const oldWindow = await query.getBillingWindow({ customerId: customer, startTime: ts(dayStart), endTime: ts(dayStart + DAY_MS) });
  assert.equal(oldWindow.vms.length, 0, "raw windows past the cutoff are gone");
  const oldDay = await query.getCustomerUsage({ customerId: customer, startTime: ts(dayStart), endTime: ts(dayStart + DAY_MS), granularity: 2 });
  assert.equal(oldDay.totals.cpuTimeNanos, old.cpuTimeNanos, "rollups are kept");
  assert.equal(oldDay.totals.windowCount, 1n);
  const recentWindow = await query.getBillingWindow({ customerId: customer, startTime: ts(Date.now() - DAY_MS), endTime: ts(Date.now()) });
  assert.deepEqual(recentWindow.vms.map((v) => v.vmId), ["vm-new"]);

  const resent = await collectorClients(second.baseUrl).binary.sendMetricsBatch(batchRequest([old, recent]));
  assert.deepEqual(summarize(resent), {
    accepted: 0,
    duplicate: 1,
    rejected: 1,
    results: [
      { index: 0, status: "ITEM_STATUS_REJECTED", reason: "REJECT_REASON_TIMESTAMP_OUT_OF_RANGE" },
      { index: 1, status: "ITEM_STATUS_DUPLICATE", reason: "REJECT_REASON_UNSPECIFIED" },
    ],
  });
  assert.match(resent.results[0].message, /retention/);
  const unchanged = await query.getCustomerUsage({ customerId: customer, startTime: ts(dayStart), endTime: ts(dayStart + DAY_MS), granularity: 2 });
  assert.equal(unchanged.totals.cpuTimeNanos, old.cpuTimeNanos, "the refused re-send added nothing");
});

test("ApplyRetention with retention off is failed_precondition", async () => {
  const server = await startServer({ args: ["--raw-retention-days=0"] });
  servers.push(server);
  const err = await expectConnectError(adminClient(server.baseUrl).applyRetention({}), Code.FailedPrecondition);
  assert.match(err.rawMessage, /--raw-retention-days/);
});
