// Display formatting of exact integers (bigint from protobuf uint64). The
// page never does arithmetic on money: amounts arrive as decimal strings.

const NANOS_PER_HOUR = 3_600_000_000_000n;
const BYTE_SECONDS_PER_GIB_HOUR = 3_600n * (1n << 30n);
const BYTES_PER_GB = 1_000_000_000n;

// value / unit as a decimal rounded half up to `digits` places, with thousands separators.
export function ratio(value: bigint, unit: bigint, digits = 3): string {
  const scale = 10n ** BigInt(digits);
  const scaled = (value * scale * 2n + unit) / (unit * 2n);
  const whole = (scaled / scale).toLocaleString("en-US");
  if (digits === 0) return whole;
  return `${whole}.${(scaled % scale).toString().padStart(digits, "0")}`;
}

export const coreHours = (nanos: bigint) => ratio(nanos, NANOS_PER_HOUR);
export const gibHours = (byteSeconds: bigint) => ratio(byteSeconds, BYTE_SECONDS_PER_GIB_HOUR);
export const vmHours = (nanos: bigint) => ratio(nanos, NANOS_PER_HOUR);
export const gigabytes = (bytes: bigint) => ratio(bytes, BYTES_PER_GB);

// For the chart only (pixels, not amounts).
export const approxCoreHours = (nanos: bigint) => Number(nanos) / Number(NANOS_PER_HOUR);
export const approxGibHours = (byteSeconds: bigint) => Number(byteSeconds) / Number(BYTE_SECONDS_PER_GIB_HOUR);

export function utc(date: Date | undefined): string {
  if (!date) return "–";
  return date.toISOString().replace("T", " ").replace(/:\d\d\.\d+Z$/, "Z").replace(/\.\d+Z$/, "Z");
}

// The summed fields of UsageTotals that have an exact decimal twin.
type SummedField =
  | "cpuTimeNanos"
  | "memoryBytesSeconds"
  | "diskReadBytes"
  | "diskWriteBytes"
  | "networkRxBytes"
  | "networkTxBytes"
  | "vmActiveNanos"
  | "windowCount";
type Totals = { [K in SummedField]: bigint } & { [K in `${SummedField}Decimal`]: string };

// A usage total, exact: past 2^64 the uint64 field saturates and only its
// decimal twin holds the value (an older server sends no twin).
export function exact(totals: Totals | undefined, field: SummedField): bigint {
  if (!totals) return 0n;
  const decimal = totals[`${field}Decimal`];
  return decimal === "" ? totals[field] : BigInt(decimal);
}
