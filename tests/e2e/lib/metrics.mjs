// Realistic metald windows: 1 minute long, minute-aligned, recent, with
// plausible counters that differ from window to window (deterministic per
// seed, so a test can rebuild the very same window to re-send it).
import { randomBytes } from "node:crypto";
import { clone, create, fromJson, toJson } from "@bufbuild/protobuf";
import { BillingMetricsSchema } from "./schema.mjs";

export const MINUTE_MS = 60_000;
export const NANOS_PER_SECOND = 1_000_000_000n;

const runTag = randomBytes(3).toString("hex");
let counter = 0;
// An id unique within this test process, e.g. "cust-a1b2c3-7".
export function uniqueId(prefix) {
  counter += 1;
  return `${prefix}-${runTag}-${counter}`;
}

// {seconds, nanos} of a google.protobuf.Timestamp for Unix milliseconds
// (plus optional extra nanoseconds).
export function ts(ms, extraNanos = 0) {
  const totalNanos = BigInt(ms) * 1_000_000n + BigInt(extraNanos);
  const seconds = totalNanos / NANOS_PER_SECOND - (totalNanos % NANOS_PER_SECOND < 0n ? 1n : 0n);
  return { seconds, nanos: Number(totalNanos - seconds * NANOS_PER_SECOND) };
}

// "Now" for window placement, fixed when the test process starts so that
// windows built at different moments of a run never shift by a minute (a test
// file runs for well under a minute or two).
export const ANCHOR_MS = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;

// A minute boundary `minutesAgo` minutes before the anchor (>= 1 keeps the
// window entirely in the past; negative values lie in the future).
export function minuteEndMs(minutesAgo) {
  return ANCHOR_MS - minutesAgo * MINUTE_MS;
}

function prng(seed) {
  // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const between = (rnd, lo, hi) => BigInt(Math.floor(lo + rnd() * (hi - lo)));

const seedOf = (text) => [...text].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0, 7);

// One BillingMetrics message for [end - 1 min, end). Options:
//   customerId, vmId, region (may be "" to inherit the batch region),
//   minutesAgo (default 1) or windowStartMs/windowEndMs,
//   seed (default: derived from the identity, so the same window gets the same values),
//   and any BillingMetrics field (camelCase) to override the generated value.
export function makeMetric({
  customerId = "cust-e2e",
  vmId = "vm-e2e",
  region = "us-east-1",
  minutesAgo = 1,
  windowEndMs,
  windowStartMs,
  seed,
  ...overrides
} = {}) {
  const endMs = windowEndMs ?? minuteEndMs(minutesAgo);
  const startMs = windowStartMs ?? endMs - MINUTE_MS;
  const seconds = BigInt(Math.max(1, Math.round((endMs - startMs) / 1000)));
  const rnd = prng(seed ?? seedOf(`${customerId}|${region}|${vmId}|${startMs}|${endMs}`));

  const vcpus = [1, 2, 4, 8][Math.floor(rnd() * 4)];
  const randomCpuTimeNanos = BigInt(Math.floor(rnd() * vcpus * Number(seconds) * 1e9 * 0.9)) + 12_345n;
  // The utilisation fields follow an overridden cpu_time_nanos, so they stay plausible.
  const cpuTimeNanos = overrides.cpuTimeNanos ?? randomCpuTimeNanos;
  const memoryBytesUsed = between(rnd, 256 * 2 ** 20, 16 * 2 ** 30);
  const memoryBytesPeak = memoryBytesUsed + between(rnd, 0, 512 * 2 ** 20);
  // At most peak x window length, which validation enforces (the extra is below 1 MiB-seconds).
  const memoryBytesSecondsDrawn = memoryBytesUsed * seconds + between(rnd, 0, 2 ** 20);
  const memoryBytesSeconds = memoryBytesSecondsDrawn < memoryBytesPeak * seconds ? memoryBytesSecondsDrawn : memoryBytesPeak * seconds;
  const diskReadOps = between(rnd, 0, 50_000);
  const diskWriteOps = between(rnd, 0, 50_000);

  const init = {
    vmId,
    customerId,
    region,
    // metald samples a little before the window closes; non-zero nanos on purpose.
    timestamp: ts(endMs - 1500, 250_000),
    windowStart: ts(startMs),
    windowEnd: ts(endMs),
    cpuTimeNanos,
    cpuUtilizationPct: Math.round((Number(cpuTimeNanos) / (Number(seconds) * 1e9 * vcpus)) * 10_000) / 100,
    cpuCoresUsed: Math.round((Number(cpuTimeNanos) / (Number(seconds) * 1e9)) * 1000) / 1000,
    memoryBytesUsed,
    memoryBytesPeak,
    memoryBytesSeconds,
    diskReadBytes: diskReadOps * 4096n + between(rnd, 0, 4096),
    diskWriteBytes: diskWriteOps * 4096n + between(rnd, 0, 4096),
    diskReadOps,
    diskWriteOps,
    networkRxBytes: between(rnd, 0, 5e9),
    networkTxBytes: between(rnd, 0, 5e9),
  };
  return create(BillingMetricsSchema, { ...init, ...overrides });
}

// A copy of `metric` with some fields replaced. Goes through create() so a
// replacement may be a plain init object (e.g. a Timestamp as {seconds, nanos}).
export function withFields(metric, fields) {
  // eslint-disable-next-line no-unused-vars
  const { $typeName, ...values } = clone(BillingMetricsSchema, metric);
  return create(BillingMetricsSchema, { ...values, ...fields });
}

// The uint64 fields that are billed: a window with any of them changed is a
// conflicting duplicate.
export const BILLED_FIELDS = [
  "cpuTimeNanos",
  "memoryBytesUsed",
  "memoryBytesPeak",
  "memoryBytesSeconds",
  "diskReadBytes",
  "diskWriteBytes",
  "diskReadOps",
  "diskWriteOps",
  "networkRxBytes",
  "networkTxBytes",
];

const tsKey = (t) => (t ? `${t.seconds}.${String(t.nanos).padStart(9, "0")}` : "-");
// (customer_id, region, vm_id, window_start, window_end) as one string.
export function identityKey(metric) {
  return [metric.customerId, metric.region, metric.vmId, tsKey(metric.windowStart), tsKey(metric.windowEnd)].join("|");
}

export const metricToJson = (metric) => toJson(BillingMetricsSchema, metric);
export const metricFromJson = (json) => fromJson(BillingMetricsSchema, json);
