// metald's legacy API as metald itself speaks it: snake_case JSON posted as
// is (int64 as numbers or strings), and the usage those samples must give,
// computed here independently of the server.
import assert from "node:assert/strict";
import { rawRequest } from "./http.mjs";

export const MS = 1_000_000n;
export const SECOND = 1_000_000_000n;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

// RFC 3339 with nanoseconds for a BigInt of unix nanoseconds.
export function rfc3339(ns) {
  const ms = Number(ns / MS);
  const nanos = (ns % SECOND).toString().padStart(9, "0");
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${nanos}Z`);
}

// JSON text of `value` where BigInts become exact JSON numbers (metald's Go
// encoder writes int64 as numbers, beyond what a JS Number holds exactly).
export function jsonWithInt64(value) {
  const marked = JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `@int64:${v}@` : v));
  return marked.replace(/"@int64:(-?\d+)@"/g, "$1");
}

// A sample as metald's JSON encodes it; `asStrings` sends the int64 fields as
// JSON strings (proto3 JSON), otherwise as exact numbers.
export function sampleJson(s, { asStrings = false } = {}) {
  const int = (v) => (asStrings ? String(v) : BigInt(v));
  return {
    timestamp: rfc3339(s.at),
    cpu_time_nanos: int(s.cpu),
    memory_usage_bytes: int(s.memory),
    disk_read_bytes: int(s.diskRead ?? 0n),
    disk_write_bytes: int(s.diskWrite ?? 0n),
    network_rx_bytes: int(s.rx ?? 0n),
    network_tx_bytes: int(s.tx ?? 0n),
  };
}

// The binary client's message for the same sample.
export function sampleMessage(s) {
  return {
    timestamp: { seconds: s.at / SECOND, nanos: Number(s.at % SECOND) },
    cpuTimeNanos: s.cpu,
    memoryUsageBytes: s.memory,
    diskReadBytes: s.diskRead ?? 0n,
    diskWriteBytes: s.diskWrite ?? 0n,
    networkRxBytes: s.rx ?? 0n,
    networkTxBytes: s.tx ?? 0n,
  };
}

// POSTs a JSON body (a string, sent byte for byte) to BillingService/<method>.
export async function postMetald(baseUrl, method, body, headers = {}) {
  return rawRequest(baseUrl, `/billing.v1.BillingService/${method}`, {
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : jsonWithInt64(body),
  });
}

export async function sendBatchJson(baseUrl, vmId, customerId, samples, options = {}) {
  const res = await postMetald(baseUrl, "SendMetricsBatch", {
    vm_id: vmId,
    customer_id: customerId,
    metrics: samples.map((s) => sampleJson(s, options)),
  });
  assert.equal(res.status, 200, `SendMetricsBatch: HTTP ${res.status} ${res.text}`);
  assert.equal(res.json.success, true, res.text);
  return res.json;
}

// The usage a VM's samples give, applied in the order received: samples at or
// before the newest one applied add nothing; counters add their deltas (a
// counter going backwards was reset and counts from zero); memory is the
// trapezoid integral, floored once over the total.
export function expectedUsage(batches) {
  let last = null;
  const total = { cpu: 0n, tx: 0n, rx: 0n, halfByteNanos: 0n, first: null, end: null };
  const delta = (a, b) => (b >= a ? b - a : b);
  for (const batch of batches) {
    for (const s of [...batch].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0))) {
      if (last && s.at <= last.at) continue;
      if (!last) {
        total.first = s.at;
      } else {
        total.cpu += delta(last.cpu, s.cpu);
        total.tx += delta(last.tx ?? 0n, s.tx ?? 0n);
        total.rx += delta(last.rx ?? 0n, s.rx ?? 0n);
        total.halfByteNanos += (last.memory + s.memory) * (s.at - last.at);
      }
      last = s;
      total.end = s.at;
    }
  }
  return {
    cpuTimeNanos: total.cpu,
    networkTxBytes: total.tx,
    networkRxBytes: total.rx,
    memoryBytesSeconds: total.halfByteNanos / (2n * SECOND),
    vmActiveNanos: total.end - total.first,
  };
}

// Samples every 100 ms from `startNs`, counters from `counters(i)`.
export function makeSamples(startNs, count, counters) {
  return Array.from({ length: count }, (_, i) => ({ at: startNs + BigInt(i) * 100n * MS, ...counters(i) }));
}
