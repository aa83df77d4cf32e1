// GetBillingWindow's two ways on a real RocksDB: from the hourly rollups for
// a range's whole hours (raw windows only where an hour is cut), and the
// reference that apportions every raw window. On random customers (two
// regions, one vm_id in both, overlapping and hour-straddling windows, windows
// longer than an hour, gaps, recorded metald gaps, effective-dated plans) and
// random ranges, hour-aligned and not, both answers must be identical, cost
// included. Where the rollups no longer match the raw windows (retention,
// windows stored without rollups) or a sum overflows, billing_window must
// still give the reference's answer.
#include <doctest/doctest.h>

#include <random>
#include <set>

#include "../storage/test_support.hpp"
#include "actors/query_worker.hpp"
#include "model/calendar.hpp"
#include "storage/billing_records.hpp"

using namespace billing;
using namespace billing::storage::testing;

namespace {

constexpr int64_t second = model::kNanosPerSecond;
constexpr int64_t hour = model::kNanosPerHour;
const int64_t day0 = model::bucket_start(model::granularity::day, t0);

// Windows may be up to 2.5 h long here (ingest's limit is configurable).
actors::query_settings long_window_settings() {
  actors::query_settings settings;
  settings.max_window_ns = 3 * hour;
  return settings;
}

int64_t uniform(std::mt19937_64& random, int64_t from, int64_t to) {
  return std::uniform_int_distribution<int64_t>(from, to)(random);
}

// A counter: mostly large, sometimes tiny (so apportioning remainders matter).
uint64_t counter(std::mt19937_64& random) {
  return random() % 4 == 0 ? random() % 10 : random() % 2'000'000'000'000;
}

std::vector<model::usage_window> random_windows(std::mt19937_64& random,
                                                const std::string& customer) {
  const std::vector<std::pair<std::string, std::string>> vms = {
      {"eu", "vm-1"}, {"us", "vm-1"}, {"eu", "vm-2"}, {"us", "vm-3"}};
  std::vector<model::usage_window> windows;
  for (const auto& [region, vm_id] : vms) {
    std::set<std::pair<int64_t, int64_t>> taken;
    int64_t at = day0 + uniform(random, -2 * hour, 3 * hour);
    while (at < day0 + 30 * hour) {
      const int64_t shape = uniform(random, 0, 99);
      int64_t length = 60 * second;
      if (shape < 20) length = uniform(random, 1, 300 * second);
      if (shape >= 97) length = uniform(random, hour, 5 * hour / 2);  // longer than an hour
      model::usage_window w;
      w.customer_id = customer;
      w.region = region;
      w.vm_id = vm_id;
      w.window_start_ns = at;
      w.window_end_ns = at + length;
      w.cpu_time_nanos = counter(random);
      w.memory_bytes_used = counter(random);
      w.memory_bytes_peak = w.memory_bytes_used + counter(random);
      w.memory_bytes_seconds = counter(random);
      w.disk_read_bytes = counter(random);
      w.disk_write_bytes = counter(random);
      w.disk_read_ops = counter(random);
      w.disk_write_ops = counter(random);
      w.network_rx_bytes = counter(random);
      w.network_tx_bytes = counter(random);
      if (taken.insert({w.window_start_ns, w.window_end_ns}).second) windows.push_back(w);
      const int64_t next = uniform(random, 0, 99);
      at = w.window_end_ns;
      if (next < 10) at += uniform(random, 1, 59 * second);                       // jitter
      if (next >= 10 && next < 18) at += uniform(random, 60 * second, 3 * hour);  // a gap
      if (next >= 18 && next < 24) at -= uniform(random, 1, length);              // overlap
    }
  }
  std::shuffle(windows.begin(), windows.end(), random);
  return windows;
}

// Commits the windows with their rollups, in groups like the ledger actors do.
void store_windows(storage::ledger_store& store, const std::vector<model::usage_window>& windows,
                   bool with_rollups = true) {
  for (size_t first = 0; first < windows.size(); first += 97) {
    storage::write_set writes;
    model::rollup_accumulator rollups;
    for (size_t i = first; i < std::min(windows.size(), first + 97); ++i) {
      writes.put_window(windows[i]);
      REQUIRE(rollups.add(windows[i]).ok());
    }
    if (with_rollups) writes.merge_rollups(windows.front().customer_id, rollups);
    REQUIRE(commit_and_wait(store, std::move(writes)).ok());
  }
}

model::plan_version plan_from(int64_t effective_from, model::int128 scale) {
  model::plan_version version;
  version.effective_from_ns = effective_from;
  auto price = [&](model::dimension which, std::vector<model::price_tier> tiers) {
    version.prices[static_cast<size_t>(which)].tiers = std::move(tiers);
  };
  // Tiers low enough that a few hours cross them, so attributing usage to the
  // wrong version, region or side of a bound changes the cost.
  price(model::dimension::cpu,
        {{model::int128{20'000'000'000'000}, model::rate{scale * 41'000'000'007}},
         {0, model::rate{scale * 13'000'000'003}}});
  price(model::dimension::memory, {{0, model::rate{scale * 7'000'000'001}}});
  price(model::dimension::network_tx,
        {{model::int128{5'000'000'000'000}, model::rate{scale * 90'000'000'001}},
         {0, model::rate{scale * 50'000'000'009}}});
  price(model::dimension::vm_time, {{0, model::rate{scale * 1'000'000'011}}});
  version.region_multipliers["us"] = 1'100'001;
  return version;
}

void store_plan(storage::ledger_store& store, const std::string& customer) {
  storage::write_set writes;
  writes.put_plan_version(customer, plan_from(day0 - 40 * model::kNanosPerDay, 1));
  writes.put_plan_version(customer, plan_from(day0 + 5 * hour + 20 * 60 * second + 7, 3));
  writes.put_plan_version(customer, plan_from(day0 + 12 * hour, 2));
  writes.put_plan_version(customer, plan_from(day0 + 20 * hour + 59 * 60 * second, 5));
  REQUIRE(commit_and_wait(store, std::move(writes)).ok());
}

model::window_query random_query(std::mt19937_64& random, const std::string& customer) {
  model::window_query query{customer, 0, 0, random() % 2 == 0};
  const int64_t shape = uniform(random, 0, 5);
  if (shape == 0) {  // whole hours
    query.start_ns = day0 + uniform(random, -3, 30) * hour;
    query.end_ns = query.start_ns + uniform(random, 1, 12) * hour;
  } else if (shape == 1) {  // inside one hour
    const int64_t in_hour = day0 + uniform(random, -3, 30) * hour;
    query.start_ns = in_hour + uniform(random, 0, hour - 2);
    query.end_ns = uniform(random, query.start_ns + 1, in_hour + hour);
  } else if (shape == 2) {  // across one hour boundary
    const int64_t boundary = day0 + uniform(random, -2, 30) * hour;
    query.start_ns = boundary - uniform(random, 1, hour - 1);
    query.end_ns = boundary + uniform(random, 1, hour - 1);
  } else if (shape == 3) {  // one end on an hour
    const int64_t on_hour = day0 + uniform(random, -3, 28) * hour;
    const int64_t length = uniform(random, 1, 6 * hour);
    query.start_ns = random() % 2 == 0 ? on_hour : on_hour - length;
    query.end_ns = query.start_ns + length;
  } else {  // anywhere, any length
    query.start_ns = day0 + uniform(random, -4 * hour, 31 * hour);
    query.end_ns = query.start_ns + uniform(random, 1, 20 * hour);
  }
  return query;
}

// Both ways must agree; the rollup way must answer (not fall back).
void check_same_answer(const storage::ledger_store& store, const model::window_query& query,
                       const actors::query_settings& settings) {
  INFO("range [", query.start_ns - day0, ", ", query.end_ns - day0, ") ns after day0, interpolate ",
       query.interpolate_gauges);
  auto reference = actors::billing_window_from_raw(store, query, settings);
  REQUIRE_MESSAGE(reference.ok(), reference.error().message());
  auto from_rollups = actors::billing_window_from_rollups(store, query, settings);
  REQUIRE(from_rollups.has_value());
  CHECK(from_rollups->totals == reference->totals);
  CHECK(from_rollups->vms == reference->vms);
  CHECK(from_rollups->gaps == reference->gaps);
  CHECK(from_rollups->cost == reference->cost);
  CHECK(*from_rollups == reference.value());
}

}  // namespace

TEST_CASE("from the rollups, a billing window equals the raw windows' answer exactly") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  const auto settings = long_window_settings();
  std::mt19937_64 random(20261125);
  for (int customer_index = 0; customer_index < 4; ++customer_index) {
    const std::string customer = "customer-" + std::to_string(customer_index);
    store_windows(*store, random_windows(random, customer));
    if (customer_index % 2 == 1) store_plan(*store, customer);
    storage::write_set gaps;
    gaps.put_metald_gap(customer, "vm-2", "eu",
                        {day0 + 7 * hour + 17 * second, day0 + 9 * hour + 3 * second});
    REQUIRE(commit_and_wait(*store, std::move(gaps)).ok());
    for (int round = 0; round < 60; ++round) {
      check_same_answer(*store, random_query(random, customer), settings);
    }
  }
}

TEST_CASE("hand-picked ranges: whole day, plan changes inside, one nanosecond, before any data") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  const auto settings = long_window_settings();
  std::mt19937_64 random(7);
  store_windows(*store, random_windows(random, "acme"));
  store_plan(*store, "acme");
  const std::vector<std::pair<int64_t, int64_t>> ranges = {
      {day0, day0 + 24 * hour},
      {day0 + 5 * hour, day0 + 6 * hour},  // the 05:20 plan change inside one whole hour
      {day0 + 5 * hour + 20 * 60 * second + 7, day0 + 21 * hour},
      {day0 + 3 * hour, day0 + 3 * hour + 1},
      {day0 - 10 * hour, day0 - 5 * hour},
      {day0 - 5 * hour + 3, day0 + 31 * hour - 3},
  };
  for (const auto& [from, to] : ranges) {
    for (bool interpolate : {false, true}) {
      check_same_answer(*store, {"acme", from, to, interpolate}, settings);
    }
  }
}

TEST_CASE("after retention dropped raw windows, the rollups stand aside and raw windows answer") {
  temp_dir dir;
  auto options = options_for(dir);
  int64_t now = day0 + 10 * model::kNanosPerDay;
  options.clock = [&now] { return now; };
  options.raw_retention_ns = 10 * model::kNanosPerDay - 3 * hour - 30 * 60 * second;
  auto store = open_store(options);
  const auto settings = long_window_settings();
  std::mt19937_64 random(11);
  store_windows(*store, random_windows(random, "acme"));
  REQUIRE(store->apply_retention().ok());

  // Windows starting before day0 + 03:30 are gone; their rollups are not.
  const model::window_query query{"acme", day0 + 2 * hour, day0 + 6 * hour, true};
  CHECK_FALSE(actors::billing_window_from_rollups(*store, query, settings).has_value());
  auto reference = actors::billing_window_from_raw(*store, query, settings);
  REQUIRE(reference.ok());
  CHECK_FALSE(reference->vms.empty());
  auto answer = actors::billing_window(*store, query, settings);
  REQUIRE(answer.ok());
  CHECK(answer.value() == reference.value());
  // Later hours still hold every window: the rollups answer there.
  check_same_answer(*store, {"acme", day0 + 6 * hour, day0 + 9 * hour, true}, settings);
}

TEST_CASE("windows stored without rollups are answered from the raw windows") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  const auto settings = long_window_settings();
  std::mt19937_64 random(13);
  store_windows(*store, random_windows(random, "acme"), /*with_rollups=*/false);
  const model::window_query query{"acme", day0, day0 + 5 * hour, false};
  CHECK_FALSE(actors::billing_window_from_rollups(*store, query, settings).has_value());
  auto answer = actors::billing_window(*store, query, settings);
  auto reference = actors::billing_window_from_raw(*store, query, settings);
  REQUIRE(answer.ok());
  REQUIRE(reference.ok());
  CHECK_FALSE(answer->vms.empty());
  CHECK(answer.value() == reference.value());
}

TEST_CASE("a sum beyond 64 bits is exact on both paths") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  // Two months' last and first hours: each month's rollups hold their sums,
  // the range's total passes 2^64.
  const int64_t month = model::bucket_start(model::granularity::month, day0);
  auto window = sample_window("acme", "eu", "vm", month - 30 * 60 * second);
  window.cpu_time_nanos = uint64_t{1} << 63;
  auto next = window;
  next.window_start_ns = month + 10 * 60 * second;
  next.window_end_ns = next.window_start_ns + 60 * second;
  window.network_tx_bytes = next.network_tx_bytes = 1;
  store_windows(*store, {window});
  store_windows(*store, {next});
  const model::window_query query{"acme", month - hour, month + hour, false};
  auto answer = actors::billing_window(*store, query, {});
  auto reference = actors::billing_window_from_raw(*store, query, {});
  REQUIRE(reference.ok());
  REQUIRE(answer.ok());
  // 2^63 + 2^63: past uint64, exact in 128 bits, on both paths.
  CHECK(answer.value().totals.cpu_time_nanos == model::usage_sum{1} << 64);
  CHECK(answer.value().totals == reference.value().totals);
}
