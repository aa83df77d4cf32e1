// billingd's allocator settings (app/allocator.cpp): jemalloc backs the
// memory it maps, RocksDB's memtables above all, with transparent huge
// pages, and MALLOC_CONF in the environment still overrides that. Read from
// the running process's /proc/PID/smaps_rollup after it stored windows.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { batchRequest, expectedSummary, summarize } from "./lib/batch.mjs";
import { collectorClients } from "./lib/clients.mjs";
import { makeMetric, uniqueId } from "./lib/metrics.mjs";
import { startServer } from "./lib/server.mjs";

const THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled";

function kernelThp() {
  try {
    return /\[(\w+)\]/.exec(readFileSync(THP_SETTING, "utf8"))?.[1] ?? "unknown";
  } catch {
    return "absent";
  }
}

function anonHugePagesKb(pid) {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = /^AnonHugePages:\s+(\d+) kB$/m.exec(rollup);
  assert.ok(kb, `no AnonHugePages line in /proc/${pid}/smaps_rollup:\n${rollup}`);
  return Number(kb[1]);
}

// Starts billingd with `env`, stores a batch, and answers its huge-page kB.
async function hugePagesAfterIngest(env) {
  const server = await startServer({ env });
  try {
    const customerId = uniqueId("cust-thp");
    const metrics = Array.from({ length: 50 }, (_, i) => makeMetric({ customerId, vmId: `vm-${i}`, minutesAgo: 3 }));
    const response = await collectorClients(server.baseUrl).binary.sendMetricsBatch(batchRequest(metrics));
    assert.deepEqual(summarize(response), expectedSummary(metrics.length));
    return anonHugePagesKb(server.child.pid);
  } finally {
    await server.cleanup();
  }
}

const thp = kernelThp();
const skip = thp === "always" || thp === "madvise" ? false : `the kernel's transparent huge pages are '${thp}' (${THP_SETTING})`;

test("billingd's memory is backed by transparent huge pages by default", { skip }, async () => {
  const kb = await hugePagesAfterIngest({});
  assert.ok(kb >= 2048, `AnonHugePages ${kb} kB: jemalloc did not take huge pages`);
});

test("MALLOC_CONF=thp:never turns them off", { skip: skip || (thp === "always" && "the kernel gives huge pages to every process") }, async () => {
  assert.equal(await hugePagesAfterIngest({ MALLOC_CONF: "thp:never" }), 0);
});
