#include "model/pricing.hpp"

#include <doctest/doctest.h>

using namespace billing;
using namespace billing::model;

namespace {

rate r(std::string_view text) {
  return parse_rate(text).value();
}

plan_version flat(dimension which, std::string_view price) {
  plan_version version;
  version.prices[static_cast<size_t>(which)].tiers = {{0, r(price)}};
  return version;
}

constexpr int128 hour = nanos_per_hour;
constexpr int128 gb = bytes_per_gb;

std::string total_of(const std::vector<invoice_line>& lines) {
  money total;
  for (const auto& line : lines) total.nanos += line.amount.nanos;
  return format_money(total);
}

}  // namespace

TEST_CASE("the seed's example: 720 + 720 + 432 = 1,872 VM-hours, priced exactly") {
  const std::vector<plan_version> versions = {flat(dimension::vm_time, "0.05")};
  const std::vector<usage_slice> slices = {
      {dimension::vm_time, "region-a", 0, 720 * hour},  // VM1, the whole 30-day month
      {dimension::vm_time, "region-a", 0, 720 * hour},  // VM2
      {dimension::vm_time, "region-b", 0, 432 * hour},  // VM3, from day 13: 18 days
  };
  auto lines = price_usage(versions, slices);
  REQUIRE(lines.ok());
  REQUIRE(lines.value().size() == 3);
  int128 hours = 0;
  for (const auto& line : lines.value()) hours += line.quantity;
  CHECK(hours == 1872 * hour);
  CHECK(format_money(lines.value()[2].amount) == "21.6");
  CHECK(total_of(lines.value()) == "93.6");
}

TEST_CASE("a rate change mid-month prices each side at its own rate") {
  std::vector<plan_version> versions = {flat(dimension::cpu, "0.0425"),
                                        flat(dimension::cpu, "0.05")};
  versions[1].effective_from_ns = 1;
  auto lines = price_usage(
      versions, {{dimension::cpu, "a", 0, 100 * hour}, {dimension::cpu, "a", 1, 50 * hour}});
  REQUIRE(lines.ok());
  REQUIRE(lines.value().size() == 2);
  CHECK(format_money(lines.value()[0].amount) == "4.25");
  CHECK(format_money(lines.value()[1].amount) == "2.5");
}

TEST_CASE("graduated tiers split the slice that crosses a bound, cumulatively over the period") {
  plan_version egress;
  egress.prices[static_cast<size_t>(dimension::network_tx)].tiers = {{1000 * gb, r("0.09")},
                                                                     {0, r("0.05")}};
  REQUIRE(validate(egress).ok());
  // 600 GB then 700 GB: the second slice has 400 GB in tier 1 and 300 GB in tier 2.
  auto lines = price_usage({egress}, {{dimension::network_tx, "a", 0, 600 * gb},
                                      {dimension::network_tx, "b", 0, 700 * gb}});
  REQUIRE(lines.ok());
  REQUIRE(lines.value().size() == 3);
  CHECK(lines.value()[1].quantity == 400 * gb);
  CHECK(lines.value()[2].quantity == 300 * gb);
  CHECK(lines.value()[2].tier_index == 1);
  CHECK(total_of(lines.value()) == "105");  // 1000 × 0.09 + 300 × 0.05
}

TEST_CASE("region multipliers scale the amount, still rounded once") {
  plan_version version = flat(dimension::cpu, "0.0425");
  version.region_multipliers["eu-west-1"] = 1'100'000;
  auto lines = price_usage(
      {version}, {{dimension::cpu, "eu-west-1", 0, 1}, {dimension::cpu, "us", 0, 3 * hour}});
  REQUIRE(lines.ok());
  CHECK(lines.value()[0].amount.nanos == 0);  // 1 ns of CPU is worth far less than a nano-unit
  CHECK(format_money(lines.value()[1].amount) == "0.1275");
  auto eu = price_usage({version}, {{dimension::cpu, "eu-west-1", 0, 3 * hour}});
  CHECK(format_money(eu.value()[0].amount) == "0.14025");
}

TEST_CASE("proration by exact nanoseconds, half to even") {
  const money fee{30'000'000'000};  // 30.0
  const int64_t day = 86'400'000'000'000;
  CHECK(format_money(prorate(fee, 18 * day, 30 * day).value()) == "18");
  CHECK(prorate(money{3}, 1, 2).value().nanos == 2);  // 1.5 → 2
  CHECK(prorate(money{5}, 1, 2).value().nanos == 2);  // 2.5 → 2
  CHECK_FALSE(prorate(fee, 31 * day, 30 * day).ok());
  CHECK_FALSE(prorate(fee, 1, 0).ok());
}

TEST_CASE("invalid plans and usage are refused with a reason") {
  plan_version bad;
  bad.prices[0].tiers = {{0, r("1")}, {0, r("2")}};
  CHECK(validate(bad).message().find("positive upper bound") != std::string::npos);
  bad.prices[0].tiers = {{100, r("1")}};
  CHECK(validate(bad).message().find("unbounded") != std::string::npos);
  bad.prices[0].tiers = {{100, r("1")}, {50, r("2")}, {0, r("3")}};
  CHECK(validate(bad).message().find("ascend") != std::string::npos);
  plan_version negative_multiplier;
  negative_multiplier.region_multipliers["x"] = 0;
  CHECK_FALSE(validate(negative_multiplier).ok());
  CHECK_FALSE(price_usage({}, {{dimension::cpu, "a", 0, 1}}).ok());
  CHECK_FALSE(price_usage({flat(dimension::cpu, "1")}, {{dimension::cpu, "a", 0, -1}}).ok());
}
