#include "model/money.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

namespace billing::model {
namespace {

// 10^24 in any scale leaves room for products with quantities in 128 bits.
constexpr int max_integer_digits = 24;

int128 power_of_ten(int exponent) {
  int128 value = 1;
  for (int i = 0; i < exponent; ++i) value *= 10;
  return value;
}

status bad_decimal(std::string_view text, std::string_view why) {
  return status{status_code::invalid_argument,
                fmt::format("\"{}\" is not a valid decimal: {}", text, why)};
}

}  // namespace

result<int128> parse_decimal(std::string_view text, int scale) {
  std::string_view rest = text;
  bool negative = false;
  if (!rest.empty() && (rest.front() == '-' || rest.front() == '+')) {
    negative = rest.front() == '-';
    rest.remove_prefix(1);
  }
  const size_t point = rest.find('.');
  const std::string_view whole = rest.substr(0, point);
  const std::string_view fraction =
      point == std::string_view::npos ? std::string_view{} : rest.substr(point + 1);
  if (whole.empty() && fraction.empty()) return bad_decimal(text, "no digits");
  if (point != std::string_view::npos && fraction.empty()) {
    return bad_decimal(text, "no digits after the decimal point");
  }
  const auto all_digits = [](std::string_view part) {
    return std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!all_digits(whole) || !all_digits(fraction)) {
    return bad_decimal(text, "only digits, one '.' and a leading sign are allowed");
  }
  const size_t significant_whole =
      whole.size() - std::min(whole.size(), whole.find_first_not_of('0'));
  if (significant_whole > max_integer_digits) {
    return bad_decimal(text, fmt::format("more than {} integer digits", max_integer_digits));
  }
  if (fraction.size() > static_cast<size_t>(scale)) {
    const size_t last_nonzero = fraction.find_last_not_of('0');
    if (last_nonzero != std::string_view::npos && last_nonzero >= static_cast<size_t>(scale)) {
      return bad_decimal(text, fmt::format("more than {} decimal places", scale));
    }
  }
  int128 value = 0;
  for (char c : whole) value = value * 10 + (c - '0');
  for (int i = 0; i < scale; ++i) {
    const int digit = static_cast<size_t>(i) < fraction.size() ? fraction[i] - '0' : 0;
    value = value * 10 + digit;
  }
  return negative ? -value : value;
}

std::string format_decimal(int128 scaled, int scale) {
  const bool negative = scaled < 0;
  // Magnitudes are bounded by parse limits and checked products, far from INT128_MIN.
  unsigned __int128 magnitude =
      negative ? static_cast<unsigned __int128>(-scaled) : static_cast<unsigned __int128>(scaled);
  std::string digits;
  do {
    digits.push_back(static_cast<char>('0' + static_cast<int>(magnitude % 10)));
    magnitude /= 10;
  } while (magnitude != 0);
  while (digits.size() <= static_cast<size_t>(scale)) digits.push_back('0');
  std::reverse(digits.begin(), digits.end());
  std::string whole = digits.substr(0, digits.size() - scale);
  std::string fraction = digits.substr(digits.size() - scale);
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  std::string out = negative ? "-" : "";
  out += whole;
  if (!fraction.empty()) out += "." + fraction;
  return out;
}

result<rate> parse_rate(std::string_view text) {
  auto parsed = parse_decimal(text, rate_scale);
  if (!parsed.ok()) return parsed.error();
  if (parsed.value() < 0) {
    return status{
        status_code::invalid_argument,
        fmt::format("rate \"{}\" is negative; rates are prices, credits are separate lines", text)};
  }
  return rate{parsed.value()};
}

std::string format_rate(const rate& value) {
  return format_decimal(value.picos, rate_scale);
}
std::string format_money(const money& value) {
  return format_decimal(value.nanos, amount_scale);
}

result<rate> rate_from_double(double value) {
  if (!std::isfinite(value) || value < 0) {
    return status{status_code::invalid_argument,
                  fmt::format("rate {} is not a finite, non-negative number", value)};
  }
  // std::to_chars without a precision writes the shortest text that reads back
  // as exactly `value`; fixed notation keeps the parser simple.
  char buffer[400];
  const auto written =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed);
  if (written.ec != std::errc{}) {
    return status{status_code::invalid_argument,
                  fmt::format("rate {} cannot be written out", value)};
  }
  return parse_rate(std::string_view(buffer, static_cast<size_t>(written.ptr - buffer)));
}

int128 divide_half_even(int128 numerator, int128 denominator) {
  int128 quotient = numerator / denominator;  // truncates toward zero
  const int128 remainder = numerator % denominator;
  if (remainder == 0) return quotient;
  const int128 twice = remainder < 0 ? -2 * remainder : 2 * remainder;
  const bool round_away = twice > denominator || (twice == denominator && quotient % 2 != 0);
  if (round_away) quotient += numerator < 0 ? -1 : 1;
  return quotient;
}

result<int128> checked_multiply(int128 a, int128 b) {
  int128 product = 0;
  if (__builtin_mul_overflow(a, b, &product)) {
    return status{status_code::out_of_range, "an amount exceeds 128-bit arithmetic"};
  }
  return product;
}

result<money> price_quantity(int128 quantity, const rate& price, int128 base_units_per_unit) {
  // nanos = quantity * picos / (base_units_per_unit * 10^(rate_scale - amount_scale))
  auto numerator = checked_multiply(quantity, price.picos);
  if (!numerator.ok()) return numerator.error();
  auto denominator = checked_multiply(base_units_per_unit, power_of_ten(rate_scale - amount_scale));
  if (!denominator.ok()) return denominator.error();
  if (denominator.value() <= 0) {
    return status{status_code::invalid_argument, "a billing unit must be a positive quantity"};
  }
  return money{divide_half_even(numerator.value(), denominator.value())};
}

}  // namespace billing::model
