// Exact money. Amounts are integers of nano-units of the currency; rates are
// exact decimals with 12 fractional digits (pico-units). Products are computed
// in 128 bits with overflow checks, and an amount is rounded exactly once, to
// the nano-unit, half to even. A double never touches an amount: the seed's
// double-typed PricingRates are converted to their shortest round-trip decimal
// on arrival and from then on are exact.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "model/status.hpp"

namespace billing::model {

using int128 = __int128;

// Fractional digits of an amount (nano-units) and of a rate (pico-units).
inline constexpr int amount_scale = 9;
inline constexpr int rate_scale = 12;

// An amount of money in nano-units of the currency, e.g. 1'500'000'000 is 1.5.
struct money {
  int128 nanos = 0;
  friend auto operator<=>(const money&, const money&) = default;
};

// A price per unit of a billed dimension in pico-units of the currency.
struct rate {
  int128 picos = 0;
  friend auto operator<=>(const rate&, const rate&) = default;
};

// Parses a plain decimal ("12", "0.0425", "-3.5") into an integer with `scale`
// fractional digits. invalid_argument on anything else: exponents, more
// fractional digits than `scale` (never silently rounded), empty input,
// stray characters, or a magnitude beyond 10^24.
result<int128> parse_decimal(std::string_view text, int scale);

// The decimal text of `scaled` / 10^scale, trailing fractional zeros removed
// ("1.5", "0.0425", "12").
std::string format_decimal(int128 scaled, int scale);

result<rate> parse_rate(std::string_view text);
std::string format_rate(const rate& value);
std::string format_money(const money& value);

// The shortest decimal that reads back as `value` (what the seed's double
// PricingRates mean), as a rate. invalid_argument for NaN, infinities,
// negative values and values needing more than 12 fractional digits.
result<rate> rate_from_double(double value);

// numerator / denominator rounded to the nearest integer, ties to even.
// denominator must be positive.
int128 divide_half_even(int128 numerator, int128 denominator);

// a * b, or out_of_range when the product does not fit 127 bits.
result<int128> checked_multiply(int128 a, int128 b);

// The amount for `quantity` base units (nanoseconds, byte-seconds, bytes...)
// at `price` per billing unit, where one billing unit is `base_units_per_unit`
// base units (3.6e12 ns per core-hour, say). Rounded once, half to even, to
// the nano-unit. out_of_range if an intermediate product overflows.
result<money> price_quantity(int128 quantity, const rate& price, int128 base_units_per_unit);

// Billing units as base units. GB means 10^9 bytes (SI), GiB 2^30 bytes.
inline constexpr int128 nanos_per_hour = int128{3'600} * 1'000'000'000;
inline constexpr int128 byte_seconds_per_gib_hour = (int128{1} << 30) * 3'600;
inline constexpr int128 bytes_per_gb = 1'000'000'000;

}  // namespace billing::model
