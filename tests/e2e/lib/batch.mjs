// Building SendMetricsBatch requests and reading their responses in a form
// that makes assertion diffs readable (enum names instead of numbers).
import assert from "node:assert/strict";
import { ItemStatus, itemStatusName, rejectReasonName } from "./schema.mjs";
import { uniqueId } from "./metrics.mjs";

export function batchRequest(metrics, { region = "us-east-1", batchId = uniqueId("batch"), instanceId = "metald-e2e-1" } = {}) {
  return { batchId, instanceId, region, metrics };
}

// {accepted, duplicate, rejected, results: [{index, status, reason}]} with
// enum names; messages are checked by assertRejectionMessages().
export function summarize(response) {
  return {
    accepted: response.acceptedCount,
    duplicate: response.duplicateCount,
    rejected: response.rejectedCount,
    results: response.results.map((r) => ({ index: r.index, status: itemStatusName(r.status), reason: rejectReasonName(r.reason) })),
  };
}

// The expected summary: `duplicates` and `rejections` ({index: reasonName}) by
// request index; everything else accepted.
export function expectedSummary(total, { duplicates = [], rejections = {} } = {}) {
  const results = [];
  for (let i = 0; i < total; i++) {
    if (duplicates.includes(i)) results.push({ index: i, status: "ITEM_STATUS_DUPLICATE", reason: "REJECT_REASON_UNSPECIFIED" });
    else if (i in rejections) results.push({ index: i, status: "ITEM_STATUS_REJECTED", reason: rejections[i] });
  }
  const rejected = Object.keys(rejections).length;
  return { accepted: total - duplicates.length - rejected, duplicate: duplicates.length, rejected, results };
}

// Every rejection carries a human-readable message.
export function assertRejectionMessages(response) {
  for (const r of response.results) {
    if (r.status === ItemStatus.ITEM_STATUS_REJECTED) {
      assert.ok(r.message.trim().length > 0, `rejection of item ${r.index} (${rejectReasonName(r.reason)}) has no message`);
    }
  }
}
