// Online backup under load and restore: every window acknowledged before
// CreateBackup was called is in the restored ledger, with its values; windows
// acknowledged later may or may not be; nothing unacknowledged is invented.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { adminClient, collectorClients, Code, expectConnectError } from "./lib/clients.mjs";
import { batchRequest, expectedSummary, summarize } from "./lib/batch.mjs";
import { identityKey, makeMetric, metricFromJson, metricToJson, uniqueId } from "./lib/metrics.mjs";
import { dumpWindows, makeTempDir, runBillingd, startServer } from "./lib/server.mjs";

const servers = [];
after(async () => {
  for (const server of servers) await server.cleanup();
});

test("backups are disabled without --backup-dir: failed_precondition", async () => {
  const server = await startServer();
  servers.push(server);
  await expectConnectError(adminClient(server.baseUrl).createBackup({}), Code.FailedPrecondition);
});

test("a backup taken under load restores every window acknowledged before it", async () => {
  const backupDir = path.join(makeTempDir("billingd-backup-"), "backups");
  const server = await startServer({ args: [`--backup-dir=${backupDir}`] });
  servers.push(server);
  const clients = collectorClients(server.baseUrl);
  const customers = [uniqueId("cust-backup"), uniqueId("cust-backup")];

  // Batches keep flowing from 4 writers while the backup is taken.
  const acknowledged = []; // {metric, at}: when its batch was acknowledged
  let minute = 0;
  let stop = false;
  const writer = async (w) => {
    while (!stop) {
      const metrics = Array.from({ length: 20 }, (_, i) =>
        makeMetric({ customerId: customers[(w + i) % 2], vmId: `vm-${w}-${i}`, minutesAgo: 200 + ++minute }),
      );
      const response = await clients.binary.sendMetricsBatch(batchRequest(metrics));
      assert.deepEqual(summarize(response), expectedSummary(metrics.length));
      const at = process.hrtime.bigint();
      for (const metric of metrics) acknowledged.push({ metric, at });
    }
  };
  const writers = [0, 1, 2, 3].map(writer);
  while (acknowledged.length < 200) await new Promise((resolve) => setTimeout(resolve, 5));

  const calledAt = process.hrtime.bigint();
  const backup = await adminClient(server.baseUrl).createBackup({});
  assert.equal(backup.backupId, 1);
  assert.ok(backup.fileCount > 0 && backup.sizeBytes > 0n, JSON.stringify({ files: backup.fileCount }));
  // Keep writing a little after the backup, then stop.
  const countAfterBackup = acknowledged.length;
  while (acknowledged.length < countAfterBackup + 100) await new Promise((resolve) => setTimeout(resolve, 5));
  stop = true;
  await Promise.all(writers);
  const { code } = await server.stop();
  assert.equal(code, 0, server.stderr);

  const restoredDir = path.join(makeTempDir("billingd-restored-"), "data");
  await runBillingd([`--restore-from=${backupDir}`, `--data-dir=${restoredDir}`]);
  const sent = new Map(acknowledged.map(({ metric, at }) => [identityKey(metric), { metric, at }]));
  let restoredCount = 0;
  const restoredKeys = new Set();
  for (const customerId of customers) {
    for (const json of await dumpWindows(restoredDir, customerId)) {
      const metric = metricFromJson(json);
      const key = identityKey(metric);
      const original = sent.get(key);
      assert.ok(original, `restored window ${key} was never acknowledged`);
      assert.deepEqual(metricToJson(metric), metricToJson(original.metric), `values of ${key}`);
      restoredKeys.add(key);
      restoredCount += 1;
    }
  }
  const ackedBefore = acknowledged.filter(({ at }) => at < calledAt);
  const missing = ackedBefore.filter(({ metric }) => !restoredKeys.has(identityKey(metric)));
  assert.equal(missing.length, 0, `${missing.length} of ${ackedBefore.length} windows acknowledged before the backup are missing`);
  assert.ok(restoredCount < acknowledged.length, "windows acknowledged well after the backup should not be in it");

  // The restored ledger serves: a re-send of a restored window is a duplicate.
  const restored = await startServer({ dataDir: restoredDir });
  servers.push(restored);
  const again = await collectorClients(restored.baseUrl).json.sendMetrics({ metrics: ackedBefore[0].metric });
  assert.equal(again.status, 2 /* ITEM_STATUS_DUPLICATE */);
});

test("restore refuses a non-empty data dir and leaves it untouched", async () => {
  const occupied = makeTempDir("billingd-occupied-");
  writeFileSync(path.join(occupied, "keep-me"), "ledger");
  const emptyBackups = makeTempDir("billingd-nobackup-");
  mkdirSync(path.join(emptyBackups, "x"));
  await assert.rejects(runBillingd([`--restore-from=${emptyBackups}`, `--data-dir=${occupied}`]), /not empty/);
  assert.ok(existsSync(path.join(occupied, "keep-me")));
});
