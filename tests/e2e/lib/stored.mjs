// Checks a --dump-windows readback against the windows a test expects stored.
import assert from "node:assert/strict";
import { identityKey, metricFromJson, metricToJson } from "./metrics.mjs";

// `dumped`: the JSON objects from dumpWindows(); `expected`: BillingMetrics
// messages (with the region already resolved). Every expected window must be
// stored exactly once with exactly the values sent, and nothing else.
export function assertStoredExactly(dumped, expected, what = "stored windows") {
  const stored = new Map();
  for (const json of dumped) {
    let metric;
    try {
      metric = metricFromJson(json);
    } catch (err) {
      assert.fail(`${what}: dump line is not a billing.v1.BillingMetrics: ${err.message}: ${JSON.stringify(json)}`);
    }
    const key = identityKey(metric);
    assert.ok(!stored.has(key), `${what}: window ${key} is stored more than once`);
    stored.set(key, metric);
  }
  const want = new Map(expected.map((m) => [identityKey(m), m]));
  const missing = [...want.keys()].filter((k) => !stored.has(k));
  const extra = [...stored.keys()].filter((k) => !want.has(k));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${what}: identities differ (${stored.size} stored, ${want.size} expected)`);
  for (const [key, metric] of want) {
    assert.deepEqual(metricToJson(stored.get(key)), metricToJson(metric), `${what}: values of window ${key}`);
  }
}
