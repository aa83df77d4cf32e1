// Live cost-to-date (model/month_cost): worked out by hand in the comments,
// and checked against what the invoice builder prices for the same windows.
#include "model/month_cost.hpp"

#include <doctest/doctest.h>

#include "model/calendar.hpp"

using namespace billing;
using namespace billing::model;

namespace {

constexpr int64_t s = kNanosPerSecond;
constexpr int64_t minute = 60 * s;
constexpr int64_t hour = kNanosPerHour;
// 2026-09-01T00:00:00Z; September has 30 days.
constexpr int64_t september = int64_t{1'788'220'800} * s;
constexpr int64_t october = september + 30 * kNanosPerDay;

rate r(std::string_view text) {
  return parse_rate(text).value();
}

// v0 from the start: cpu 0.10 per core-hour for the first core-hour of the
// month, 0.05 after; region b ×1.5. v1 from 10:20 on the 1st: cpu 0.20 flat.
std::vector<plan_version> tiered_plan_with_rate_change() {
  plan_version v0;
  v0.effective_from_ns = september;
  v0.prices[static_cast<size_t>(dimension::cpu)].tiers = {{3600 * s, r("0.10")}, {0, r("0.05")}};
  v0.region_multipliers["b"] = 1'500'000;
  plan_version v1;
  v1.effective_from_ns = september + 10 * hour + 20 * minute;
  v1.prices[static_cast<size_t>(dimension::cpu)].tiers = {{0, r("0.20")}};
  return {v0, v1};
}

usage_window window(std::string region, int64_t start, int64_t end, uint64_t cpu_seconds) {
  usage_window w;
  w.customer_id = "acme";
  w.region = std::move(region);
  w.vm_id = "vm-1";
  w.window_start_ns = start;
  w.window_end_ns = end;
  w.cpu_time_nanos = cpu_seconds * s;
  return w;
}

// What a draft invoice of September charges for usage after `windows`.
std::string invoice_usage_subtotal(const std::vector<plan_version>& versions,
                                   const std::vector<usage_window>& windows) {
  rollup_accumulator rollups;
  for (const auto& w : windows) REQUIRE(rollups.add(w).ok());
  invoice_builder builder("acme", september, october, versions);
  for (const auto& [id, value] : rollups.buckets()) builder.add_hour(id, value);
  for (const auto& w : windows) builder.add_window(w);
  auto bill = std::move(builder).finish();
  REQUIRE(bill.ok());
  return format_money(bill.value().usage_subtotal);
}

std::string cost_of(const month_cost& cost) {
  auto text = cost.cost();
  REQUIRE(text.ok());
  return text.value();
}

void add(month_cost& cost, const usage_window& w) {
  auto added = cost.start_additions();
  REQUIRE(added.add(w).ok());
  REQUIRE(cost.apply(added).ok());
}

}  // namespace

TEST_CASE("cost to date follows tiers across regions, region multipliers and a rate change") {
  const auto versions = tiered_plan_with_rate_change();
  month_cost cost("acme", september, versions, {});
  CHECK(cost_of(cost) == "0");

  // a, 09:00-10:00, half a core-hour, tier 1: 0.5 × 0.10 = 0.05.
  const auto w1 = window("a", september + 9 * hour, september + 10 * hour, 1800);
  add(cost, w1);
  CHECK(cost_of(cost) == "0.05");

  // b, 09:00-10:00, one core-hour: 0.5 left in tier 1 (× 1.5: 0.075), 0.5 in
  // tier 2 (0.5 × 0.05 × 1.5 = 0.0375): 0.1625 in all.
  const auto w2 = window("b", september + 9 * hour, september + 10 * hour, 3600);
  add(cost, w2);
  CHECK(cost_of(cost) == "0.1625");

  // a, 10:00-11:00, one core-hour, cut at 10:20: 1200 s under v0, 2400 s
  // under v1. v0 a: 3000 s in tier 1 = 0.0833333333 → 0.083333333; v0 b:
  // 600 s in tier 1 ×1.5 = 0.025, 3000 s in tier 2 ×1.5 = 0.0625; v1 a:
  // 2400 s × 0.20 = 0.1333333333 → 0.133333333. Sum 0.304166666.
  const auto w3 = window("a", september + 10 * hour, september + 11 * hour, 3600);
  add(cost, w3);
  CHECK(cost_of(cost) == "0.304166666");
  CHECK(cost_of(cost) == invoice_usage_subtotal(versions, {w1, w2, w3}));
}

TEST_CASE("cost to date does not depend on the order windows arrive in, and equals the invoice") {
  const auto versions = tiered_plan_with_rate_change();
  std::vector<usage_window> windows;
  // Windows straddling hours and the 10:20 change, in two regions, sent late and early.
  for (int i = 0; i < 12; ++i) {
    const int64_t start = september + 8 * hour + i * 17 * minute;
    windows.push_back(window(i % 2 ? "a" : "b", start, start + 23 * minute, 700 + 131 * i));
  }
  month_cost forwards("acme", september, versions, {});
  month_cost backwards("acme", september, versions, {});
  std::vector<usage_window> seen;
  for (size_t i = 0; i < windows.size(); ++i) {
    add(forwards, windows[i]);
    add(backwards, windows[windows.size() - 1 - i]);
    seen.push_back(windows[i]);
    CHECK(cost_of(forwards) == invoice_usage_subtotal(versions, seen));
  }
  CHECK(cost_of(backwards) == cost_of(forwards));
  CHECK(cost_of(forwards) != "0");
}

TEST_CASE("one ingest's additions are applied together; other months add nothing") {
  const auto versions = tiered_plan_with_rate_change();
  month_cost cost("acme", september, versions, {});
  auto added = cost.start_additions();
  REQUIRE(added.add(window("a", september + 9 * hour, september + 10 * hour, 1800)).ok());
  REQUIRE(added.add(window("a", october + hour, october + 2 * hour, 3600)).ok());  // October
  CHECK(cost_of(cost) == "0");
  REQUIRE(cost.apply(added).ok());
  CHECK(cost_of(cost) == "0.05");
}

TEST_CASE("without a plan there is no cost to date") {
  month_cost cost("acme", september, {}, {});
  add(cost, window("a", september, september + hour, 3600));
  CHECK(cost_of(cost).empty());
}

TEST_CASE("the cost continues from the invoice builder's usage of what is stored") {
  const auto versions = tiered_plan_with_rate_change();
  const auto w1 = window("a", september + 9 * hour, september + 10 * hour, 1800);
  const auto w2 = window("b", september + 10 * hour, september + 11 * hour, 3600);
  rollup_accumulator stored;
  REQUIRE(stored.add(w1).ok());
  invoice_builder builder("acme", september, october, versions);
  for (const auto& [id, value] : stored.buckets()) builder.add_hour(id, value);
  builder.add_window(w1);
  auto usage = std::move(builder).usage();
  REQUIRE(usage.ok());
  month_cost cost("acme", september, versions, std::move(usage).value());
  CHECK(cost_of(cost) == "0.05");
  add(cost, w2);
  CHECK(cost_of(cost) == invoice_usage_subtotal(versions, {w1, w2}));
}
