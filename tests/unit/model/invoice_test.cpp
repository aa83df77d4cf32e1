// Invoices from hourly rollups: expected amounts are worked out by hand in
// the comments, never by calling the code under test.
#include "model/invoice.hpp"

#include <doctest/doctest.h>

#include "model/calendar.hpp"

using namespace billing;
using namespace billing::model;

namespace {

constexpr int64_t s = kNanosPerSecond;
constexpr int64_t minute = 60 * s;
constexpr int64_t hour = kNanosPerHour;
constexpr int64_t day = kNanosPerDay;
// 2026-09-01T00:00:00Z: September has 30 days.
constexpr int64_t september = int64_t{1'788'220'800} * s;
constexpr int64_t october = september + 30 * day;

rate r(std::string_view text) {
  return parse_rate(text).value();
}
money m(std::string_view text) {
  return money{parse_decimal(text, amount_scale).value()};
}

void set_flat(plan_version& version, dimension which, std::string_view price) {
  version.prices[static_cast<size_t>(which)].tiers = {{0, r(price)}};
}

rollup_value busy_hour(int64_t hour_start, uint64_t cpu_nanos) {
  rollup_value value;
  value.totals.cpu_time_nanos = cpu_nanos;
  value.totals.vm_active_nanos = hour;
  value.totals.window_count = 60;
  value.first_active_ns = hour_start;
  value.last_active_ns = hour_start + hour;
  return value;
}

void add_hours(invoice_builder& builder, const std::string& region, const std::string& vm,
               int64_t from, int64_t to, uint64_t cpu_nanos_per_hour) {
  for (int64_t h = from; h < to; h += hour) {
    builder.add_hour({granularity::hour, h, region, vm}, busy_hour(h, cpu_nanos_per_hour));
  }
}

usage_window one_window(int64_t start, int64_t end, uint64_t cpu_nanos) {
  usage_window window;
  window.customer_id = "acme";
  window.region = "a";
  window.vm_id = "vm-1";
  window.window_start_ns = start;
  window.window_end_ns = end;
  window.cpu_time_nanos = cpu_nanos;
  return window;
}

}  // namespace

TEST_CASE("monthly periods start on the first of a month") {
  auto period = monthly_period(september);
  REQUIRE(period.ok());
  CHECK(period.value().second == october);
  CHECK(monthly_period(september + hour).error().code() == status_code::invalid_argument);
}

TEST_CASE("the seed's example: 720 + 720 + 432 VM-hours with a region multiplier and base fee") {
  plan_version plan;
  set_flat(plan, dimension::vm_time, "0.05");
  set_flat(plan, dimension::cpu, "0.0425");
  plan.region_multipliers["b"] = 1'100'000;  // ×1.1
  plan.monthly_base_fee = m("30");
  invoice_builder builder("acme", september, october, {plan});
  CHECK(builder.split_hours().empty());
  add_hours(builder, "a", "vm-1", september, october, 1800 * s);  // half a core
  add_hours(builder, "a", "vm-2", september, october, 1800 * s);
  add_hours(builder, "b", "vm-3", september + 12 * day, october, 1800 * s);  // from day 13
  auto built = std::move(builder).finish();
  REQUIRE(built.ok());
  const invoice& bill = built.value();

  REQUIRE(bill.vms.size() == 3);
  CHECK(bill.vms[0].vm_id == "vm-1");
  CHECK(bill.vms[0].active_nanos == uint64_t{720} * hour);
  CHECK(bill.vms[1].active_nanos == uint64_t{720} * hour);
  CHECK(bill.vms[2].active_nanos == uint64_t{432} * hour);
  CHECK(bill.vms[2].first_active_ns == september + 12 * day);
  CHECK(bill.vms[2].last_active_ns == october);
  CHECK(bill.active_from_ns == september);

  // cpu a: 1440 h × 0.5 = 720 core-hours × 0.0425 = 30.60
  // cpu b: 432 × 0.5 = 216 core-hours × 0.0425 × 1.1 = 10.098
  // vm a: 1440 VM-hours × 0.05 = 72; vm b: 432 × 0.05 × 1.1 = 23.76
  // base fee: active the whole period: 30.
  REQUIRE(bill.lines.size() == 5);
  CHECK(bill.lines[0].which == dimension::cpu);
  CHECK(bill.lines[0].region == "a");
  CHECK(bill.lines[0].amount == m("30.60"));
  CHECK(bill.lines[1].amount == m("10.098"));
  CHECK(bill.lines[1].multiplier == 1'100'000);
  CHECK(bill.lines[2].which == dimension::vm_time);
  CHECK(bill.lines[2].quantity == int128{1440} * hour);
  CHECK(bill.lines[2].amount == m("72"));
  CHECK(bill.lines[3].amount == m("23.76"));
  CHECK(bill.lines[4].kind == line_kind::base_fee);
  CHECK(bill.lines[4].amount == m("30"));
  CHECK(bill.usage_subtotal == m("136.458"));
  CHECK(bill.total == m("166.458"));
}

TEST_CASE("a rate change inside an hour splits that hour exactly by its raw windows") {
  const int64_t change = september + 13 * day + 9 * hour + 20 * minute;  // 2026-09-14T09:20Z
  const int64_t nine = september + 13 * day + 9 * hour;
  plan_version before;
  set_flat(before, dimension::cpu, "0.06");
  before.effective_from_ns = september - 100 * day;
  before.monthly_base_fee = m("30");
  plan_version after;
  set_flat(after, dimension::cpu, "0.12");
  after.effective_from_ns = change;
  after.monthly_base_fee = m("60");
  invoice_builder builder("acme", september, october, {before, after});
  REQUIRE(builder.split_hours() == std::vector<int64_t>{nine});

  // One busy core from 08:00 to 11:00. The 09:00 hour: 19 one-minute windows,
  // one two-minute window across the change, 39 one-minute windows.
  add_hours(builder, "a", "vm-1", nine - hour, nine, 3600 * s);
  add_hours(builder, "a", "vm-1", nine, nine + 2 * hour, 3600 * s);
  for (int i = 0; i < 19; ++i) {
    builder.add_window(one_window(nine + i * minute, nine + (i + 1) * minute, 60 * s));
  }
  builder.add_window(one_window(nine + 19 * minute, nine + 21 * minute, 120 * s));
  for (int i = 21; i < 60; ++i) {
    builder.add_window(one_window(nine + i * minute, nine + (i + 1) * minute, 60 * s));
  }
  builder.add_window(one_window(nine - minute, nine, 60 * s));  // outside: ignored

  auto built = std::move(builder).finish();
  REQUIRE(built.ok());
  const invoice& bill = built.value();
  // Before: 08:00-09:20 = 4800 core-seconds = 4/3 core-hours × 0.06 = 0.08.
  // After: 09:20-11:00 = 6000 core-seconds = 5/3 core-hours × 0.12 = 0.20.
  REQUIRE(bill.lines.size() == 4);
  CHECK(bill.lines[0].quantity == int128{4800} * s);
  CHECK(bill.lines[0].amount == m("0.08"));
  CHECK(bill.lines[0].version_effective_from_ns == before.effective_from_ns);
  CHECK(bill.lines[1].quantity == int128{6000} * s);
  CHECK(bill.lines[1].amount == m("0.2"));
  CHECK(bill.lines[1].version_effective_from_ns == change);
  // Active from 2026-09-14T08:00Z. Period: 2,592,000 s.
  // Fee before: 30 × 4800 / 2,592,000 = 0.0555555… → 0.055555556.
  // Fee after: 60 × (16 d + 14 h 40 min = 1,435,200 s) / 2,592,000 = 33.2222222… → 33.222222222.
  CHECK(bill.lines[2].kind == line_kind::base_fee);
  CHECK(bill.lines[2].quantity == int128{4800} * s);
  CHECK(bill.lines[2].amount == m("0.055555556"));
  CHECK(bill.lines[3].quantity == int128{1'435'200} * s);
  CHECK(bill.lines[3].amount == m("33.222222222"));
  CHECK(bill.total == m("33.557777778"));
}

TEST_CASE("a split hour without raw windows is priced at the version in force at its end") {
  plan_version before;
  set_flat(before, dimension::cpu, "1");
  plan_version after;
  set_flat(after, dimension::cpu, "2");
  after.effective_from_ns = september + 30 * minute;
  invoice_builder builder("acme", september, october, {before, after});
  add_hours(builder, "a", "vm-1", september, september + hour, 3600 * s);
  auto built = std::move(builder).finish();
  REQUIRE(built.ok());
  REQUIRE(built.value().lines.size() == 1);
  CHECK(built.value().lines[0].amount == m("2"));
}

TEST_CASE("raw windows exceeding their hour's rollup are an internal error") {
  plan_version before;
  plan_version after;
  after.effective_from_ns = september + 30 * minute;
  invoice_builder builder("acme", september, october, {before, after});
  add_hours(builder, "a", "vm-1", september, september + hour, 60 * s);
  builder.add_window(one_window(september, september + minute, 120 * s));
  CHECK(std::move(builder).finish().error().code() == status_code::internal);
}

TEST_CASE("the minimum is prorated to the active part and tops up graduated usage") {
  plan_version plan;
  plan.prices[static_cast<size_t>(dimension::network_tx)].tiers = {
      {int128{1'000'000'000'000}, r("0.09")}, {0, r("0.05")}};
  plan.monthly_minimum = m("100");
  invoice_builder builder("acme", september, october, {plan});
  // Active from day 16 (15 of 30 days): the minimum is 50.
  rollup_value sent;
  sent.totals.network_tx_bytes = 200'000'000'000;  // 200 GB × 0.09 = 18
  sent.totals.vm_active_nanos = minute;
  sent.first_active_ns = september + 15 * day;
  sent.last_active_ns = september + 15 * day + minute;
  builder.add_hour({granularity::hour, september + 15 * day, "a", "vm-1"}, sent);
  auto built = std::move(builder).finish();
  REQUIRE(built.ok());
  const invoice& bill = built.value();
  REQUIRE(bill.lines.size() == 2);
  CHECK(bill.lines[0].amount == m("18"));
  CHECK(bill.lines[1].kind == line_kind::minimum);
  CHECK(bill.lines[1].amount == m("32"));  // 50 - 18
  CHECK(bill.total == m("50"));
}

TEST_CASE("graduated tiers split a slice at the bound; no usage means no fee") {
  plan_version plan;
  plan.prices[static_cast<size_t>(dimension::network_tx)].tiers = {
      {int128{1'000'000'000'000}, r("0.09")}, {0, r("0.05")}};
  plan.monthly_base_fee = m("10");
  plan.monthly_minimum = m("10");
  {
    invoice_builder builder("acme", september, october, {plan});
    rollup_value sent;
    sent.totals.network_tx_bytes = 1'500'000'000'000;  // 1000 GB × 0.09 + 500 GB × 0.05 = 115
    sent.totals.vm_active_nanos = minute;
    sent.first_active_ns = september;
    sent.last_active_ns = september + minute;
    builder.add_hour({granularity::hour, september, "a", "vm-1"}, sent);
    auto built = std::move(builder).finish();
    REQUIRE(built.ok());
    REQUIRE(built.value().lines.size() == 3);
    CHECK(built.value().lines[0].amount == m("90"));
    CHECK(built.value().lines[1].amount == m("25"));
    CHECK(built.value().lines[1].tier == 1);
    CHECK(built.value().total == m("125"));  // + base fee 10; minimum 10 < 115
  }
  invoice_builder idle("acme", september, october, {plan});
  auto built = std::move(idle).finish();
  REQUIRE(built.ok());
  CHECK(built.value().lines.empty());
  CHECK(built.value().total == money{});
  CHECK(built.value().active_from_ns == october);
}

TEST_CASE("no plan versions: failed_precondition") {
  invoice_builder builder("acme", september, october, {});
  CHECK(std::move(builder).finish().error().code() == status_code::failed_precondition);
}

TEST_CASE("adjustments add to the total and are summed per adjusted period") {
  invoice bill;
  bill.subtotal = m("10");
  bill.total = m("10");
  add_adjustment(bill, september, m("1.5"));
  add_adjustment(bill, september, m("-0.5"));
  add_adjustment(bill, september - 31 * day, m("2"));
  CHECK(bill.total == m("13"));
  CHECK(bill.adjustments == m("3"));
  CHECK(adjustments_for(bill, september) == m("1"));
}

TEST_CASE("billing units as decimals, half-even at 12 digits") {
  CHECK(format_units(int128{1800} * s, nanos_per_hour) == "0.5");
  CHECK(format_units(1'000'000'000, nanos_per_hour) == "0.000277777778");
  CHECK(format_units(1'500'000'000'000, bytes_per_gb) == "1500");
  CHECK(format_units(1, nanos_per_hour) == "0");
}

TEST_CASE("the cost of a range splits windows at a rate change and prices each part") {
  const int64_t nine = september + 9 * hour;
  plan_version before;
  set_flat(before, dimension::cpu, "0.06");
  before.monthly_base_fee = m("1000");  // fees are for invoices only
  plan_version after;
  set_flat(after, dimension::cpu, "0.12");
  after.effective_from_ns = nine + 20 * minute;
  // One busy core 09:00-10:00, a two-minute window across the change.
  std::vector<usage_window> windows;
  for (int i = 0; i < 19; ++i) {
    windows.push_back(one_window(nine + i * minute, nine + (i + 1) * minute, 60 * s));
  }
  windows.push_back(one_window(nine + 19 * minute, nine + 21 * minute, 120 * s));
  for (int i = 21; i < 60; ++i) {
    windows.push_back(one_window(nine + i * minute, nine + (i + 1) * minute, 60 * s));
  }
  // 1/3 core-hour × 0.06 + 2/3 × 0.12 = 0.02 + 0.08.
  auto cost = usage_cost({before, after}, windows, nine, nine + hour);
  REQUIRE(cost.ok());
  CHECK(cost.value() == m("0.1"));
  // Only 09:30-10:00 is in the range: 1/2 core-hour × 0.12.
  CHECK(usage_cost({before, after}, windows, nine + 30 * minute, nine + hour).value() == m("0.06"));
  CHECK(usage_cost({}, windows, nine, nine + hour).error().code() ==
        status_code::failed_precondition);
}
