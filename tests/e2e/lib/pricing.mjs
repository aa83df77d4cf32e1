// An independent, BigInt-only price calculator for the invoice tests: the
// expected amounts are computed here from what a test sent, never by asking
// the server. Rates are decimal strings (12 fractional digits at most),
// amounts nano-units of the currency, multipliers millionths.

export const NS_PER_HOUR = 3_600_000_000_000n;
export const BYTE_SECONDS_PER_GIB_HOUR = 1_073_741_824n * 3600n;
export const BYTES_PER_GB = 1_000_000_000n;

// Wire enum numbers (billing.v1.Dimension, billing.v1.LineKind).
export const DIM = { cpu: 1, memory: 2, disk_read: 3, disk_write: 4, network_rx: 5, network_tx: 6, vm_time: 7 };
export const KIND = { usage: 1, base_fee: 2, minimum: 3, adjustment: 4 };

// "0.0425" with `scale` fractional digits -> 42500000000n (scale 12).
export function decimal(text, scale) {
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
  if (fraction.length > scale) throw new Error(`${text} has more than ${scale} decimals`);
  const value = BigInt(whole + fraction.padEnd(scale, "0"));
  return negative ? -value : value;
}

// n / d rounded to the nearest integer, ties to even (d > 0).
export function halfEven(n, d) {
  const negative = n < 0n;
  const m = negative ? -n : n;
  let q = m / d;
  const twice = 2n * (m % d);
  if (twice > d || (twice === d && q % 2n === 1n)) q += 1n;
  return negative ? -q : q;
}

// Nano-units -> the server's decimal text ("166.458", "25", "-0.5").
export function money(nanos) {
  const negative = nanos < 0n;
  const m = negative ? -nanos : nanos;
  const whole = m / 1_000_000_000n;
  const fraction = (m % 1_000_000_000n).toString().padStart(9, "0").replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}

// Amount of `quantity` base units at `rate` per billing unit of `base` base
// units, times `multiplier` (decimal text), rounded once.
export function lineAmount(quantity, rate, base, multiplier = "1") {
  return halfEven(quantity * decimal(rate, 12) * decimal(multiplier, 6), base * 1_000_000n * 1000n);
}

// A monthly fee prorated over active / period nanoseconds, rounded once.
export function prorated(fee, activeNs, periodNs) {
  return halfEven(decimal(fee, 9) * activeNs, periodNs);
}

// Splits `quantity` over graduated tiers [{upTo (base units, 0n last), rate}]
// given what earlier slices already used; returns [{tier, quantity, rate}].
export function tiered(quantity, tiers, usedBefore) {
  const parts = [];
  let remaining = quantity;
  let used = usedBefore;
  tiers.forEach((tier, index) => {
    if (remaining === 0n) return;
    if (tier.upTo !== 0n && used >= tier.upTo) return;
    const inTier = tier.upTo === 0n ? remaining : (remaining < tier.upTo - used ? remaining : tier.upTo - used);
    parts.push({ tier: index + 1, quantity: inTier, rate: tier.rate });
    used += inTier;
    remaining -= inTier;
  });
  return parts;
}
