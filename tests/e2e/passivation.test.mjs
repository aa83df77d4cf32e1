// Idle customer ledgers are stopped (--customer-idle-seconds) and come back
// from RocksDB on the next request: duplicates are still recognised, totals
// are unchanged, and a ledger with a live subscriber is never stopped.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { batchRequest, summarize } from "./lib/batch.mjs";
import { collectorClients, queryClient } from "./lib/clients.mjs";
import { makeMetric, ts, uniqueId } from "./lib/metrics.mjs";
import { startServer } from "./lib/server.mjs";

const WAIT_MS = 10_000;
let server;
let ingest;

before(async () => {
  server = await startServer({ args: ["--customer-idle-seconds=1"] });
  ingest = collectorClients(server.baseUrl).binary;
});
after(async () => {
  await server?.cleanup();
});

async function ledgers() {
  const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
  return Number(text.match(/^billing_actors\{kind="customer_ledgers"\} (\S+)$/m)?.[1]);
}

async function waitForLedgers(expected) {
  const deadline = Date.now() + WAIT_MS;
  while ((await ledgers()) !== expected) {
    assert.ok(Date.now() < deadline, `customer ledgers did not reach ${expected} (now ${await ledgers()})`);
    await sleep(50);
  }
}

test("idle ledgers stop and come back from RocksDB: duplicates recognised, totals exact", async () => {
  const customers = [uniqueId("cust-idle"), uniqueId("cust-idle"), uniqueId("cust-idle")];
  const first = customers.map((customerId) => makeMetric({ customerId, vmId: "vm-1", minutesAgo: 3 }));
  assert.equal((await ingest.sendMetricsBatch(batchRequest(first))).acceptedCount, 3);
  assert.ok((await ledgers()) >= 3);
  await waitForLedgers(0);

  // Respawned from RocksDB: the same windows are duplicates, new ones count.
  const again = await ingest.sendMetricsBatch(batchRequest(first));
  assert.deepEqual({ accepted: again.acceptedCount, duplicate: again.duplicateCount }, { accepted: 0, duplicate: 3 });
  const second = customers.map((customerId) => makeMetric({ customerId, vmId: "vm-1", minutesAgo: 2 }));
  assert.equal(summarize(await ingest.sendMetricsBatch(batchRequest(second))).accepted, 3);
  const day = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  for (const [i, customerId] of customers.entries()) {
    const usage = await queryClient(server.baseUrl).getCustomerUsage({ customerId, startTime: ts(day - 86_400_000), endTime: ts(day + 86_400_000), granularity: 2 });
    assert.equal(usage.totals.cpuTimeNanos, first[i].cpuTimeNanos + second[i].cpuTimeNanos);
    assert.equal(usage.totals.windowCount, 2n);
  }
});

test("a ledger with a live subscriber is not stopped, and keeps streaming", async () => {
  await waitForLedgers(0);
  const customerId = uniqueId("cust-watched");
  const leave = new AbortController();
  const stream = queryClient(server.baseUrl).streamLiveUsage({ customerId }, { signal: leave.signal })[Symbol.asyncIterator]();
  assert.equal((await stream.next()).value.snapshot, true);
  await sleep(2_500); // more than twice the idle time
  assert.equal(await ledgers(), 1);
  const m = makeMetric({ customerId, vmId: "vm-1", minutesAgo: 4 });
  await ingest.sendMetricsBatch(batchRequest([m]));
  const update = (await stream.next()).value;
  assert.equal(update.delta.cpuTimeNanos, m.cpuTimeNanos);
  leave.abort();
  // Once its subscriber has left, the ledger is idle and stops too.
  await waitForLedgers(0);
});
