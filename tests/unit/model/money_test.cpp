#include "model/money.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace billing;
using namespace billing::model;

namespace {

int128 parse_ok(std::string_view text, int scale) {
  auto parsed = parse_decimal(text, scale);
  REQUIRE_MESSAGE(parsed.ok(), text);
  return parsed.value();
}

std::string rate_text_of(double value) {
  auto converted = rate_from_double(value);
  REQUIRE(converted.ok());
  return format_rate(converted.value());
}

}  // namespace

TEST_CASE("decimals parse exactly at a fixed scale") {
  CHECK(parse_ok("0.0425", 12) == 42'500'000'000);
  CHECK(parse_ok("12", 9) == 12'000'000'000);
  CHECK(parse_ok("-3.5", 9) == -3'500'000'000);
  CHECK(parse_ok("+.5", 2) == 50);
}

TEST_CASE("malformed or over-precise decimals are invalid_argument, never rounded") {
  for (std::string_view text : {"", "-", ".", "1e3", "1.2.3", "abc", " 1", "1,5", "0x10", "7."}) {
    auto parsed = parse_decimal(text, 12);
    CHECK_MESSAGE(!parsed.ok(), text);
    if (!parsed.ok()) CHECK(parsed.error().code() == status_code::invalid_argument);
  }
  auto too_precise = parse_decimal("0.0000000000001", 12);
  REQUIRE_FALSE(too_precise.ok());
  CHECK(too_precise.error().message().find("12 decimal places") != std::string::npos);
  // Trailing zeros beyond the scale change nothing, so they are accepted.
  CHECK(parse_ok("0.10000000000000", 12) == 100'000'000'000);
  CHECK_FALSE(parse_decimal("1000000000000000000000000000", 12).ok());
}

TEST_CASE("formatting drops trailing zeros and round-trips") {
  CHECK(format_decimal(42'500'000'000, 12) == "0.0425");
  CHECK(format_decimal(12'000'000'000, 9) == "12");
  CHECK(format_decimal(-1, 9) == "-0.000000001");
  CHECK(format_decimal(0, 9) == "0");
  for (std::string_view text : {"0.0425", "12", "-3.5", "0.000000000001", "123456789.987654321"}) {
    CHECK(format_decimal(parse_ok(text, 12), 12) == text);
  }
}

TEST_CASE("the seed's double rates become their shortest round-trip decimal") {
  CHECK(rate_text_of(0.0425) == "0.0425");
  CHECK(rate_text_of(0.1) == "0.1");  // not 0.1000000000000000055511151231257827
  CHECK(rate_text_of(5.0) == "5");
  CHECK(rate_text_of(0.0) == "0");
  CHECK_FALSE(rate_from_double(-0.5).ok());
  CHECK_FALSE(rate_from_double(1.0 / 0.0).ok());
  CHECK_FALSE(rate_from_double(1e-13).ok());  // finer than a pico-unit: refused, not rounded
}

TEST_CASE("division rounds half to even, symmetric for negatives") {
  CHECK(divide_half_even(5, 2) == 2);
  CHECK(divide_half_even(7, 2) == 4);
  CHECK(divide_half_even(-5, 2) == -2);
  CHECK(divide_half_even(-7, 2) == -4);
  CHECK(divide_half_even(10, 3) == 3);
  CHECK(divide_half_even(11, 3) == 4);
  CHECK(divide_half_even(-11, 3) == -4);
  CHECK(divide_half_even(6, 3) == 2);
}

TEST_CASE("pricing a quantity: one rounding, exact units") {
  const rate per_core_hour = parse_rate("0.0425").value();
  // One core for one hour.
  CHECK(price_quantity(nanos_per_hour, per_core_hour, nanos_per_hour).value().nanos == 42'500'000);
  // 720 hours of one core: exactly 30.6.
  CHECK(format_money(price_quantity(720 * nanos_per_hour, per_core_hour, nanos_per_hour).value()) ==
        "30.6");
  // One nanosecond of CPU: 0.0425 / 3.6e12 = 1.18e-14 rounds to 0 nano-units.
  CHECK(price_quantity(1, per_core_hour, nanos_per_hour).value().nanos == 0);
  // Half a nano-unit exactly: 0.5 nano rounds to even (0), 1.5 to 2.
  const rate one_nano_per_unit = parse_rate("0.000000001").value();
  CHECK(price_quantity(1, one_nano_per_unit, 2).value().nanos == 0);
  CHECK(price_quantity(3, one_nano_per_unit, 2).value().nanos == 2);
  // GB is SI: 10^9 bytes.
  const rate per_gb = parse_rate("0.09").value();
  CHECK(format_money(price_quantity(bytes_per_gb * 1000, per_gb, bytes_per_gb).value()) == "90");
  // GiB-hours from byte-seconds.
  const rate per_gib_hour = parse_rate("0.005").value();
  CHECK(format_money(
            price_quantity(byte_seconds_per_gib_hour * 2, per_gib_hour, byte_seconds_per_gib_hour)
                .value()) == "0.01");
}

TEST_CASE("overflow is an error, never a wrapped amount") {
  const rate huge = parse_rate("999999999999999999999999").value();
  const int128 big_quantity = int128{1} << 100;
  auto priced = price_quantity(big_quantity, huge, 1);
  REQUIRE_FALSE(priced.ok());
  CHECK(priced.error().code() == status_code::out_of_range);
  CHECK_FALSE(price_quantity(1, huge, 0).ok());
}
