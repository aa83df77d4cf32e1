// Rollups in the store: Merge operands combined by the rollups merge
// operator, raw-window retention, and the version 1 -> 2 migration, on a real
// RocksDB.
#include <doctest/doctest.h>

#include <map>

#include "model/calendar.hpp"
#include "model/rollup.hpp"
#include "raw_rocksdb.hpp"
#include "storage/bytes.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "test_support.hpp"

using namespace billing;
using namespace billing::storage;
using namespace billing::storage::testing;

namespace {

// 2026-03-14T09:00:00Z
constexpr int64_t hour9 = int64_t{1'773'478'800} * model::kNanosPerSecond;

std::map<model::rollup_id, model::rollup_value> scan_all_rollups(const ledger_store& store,
                                                                 const std::string& customer,
                                                                 model::granularity grain,
                                                                 int64_t from, int64_t to) {
  std::map<model::rollup_id, model::rollup_value> found;
  auto scanned = store.scan_rollups(customer, grain, from, to, [&](const auto& id, const auto& v) {
    found.emplace(id, v);
    return true;
  });
  REQUIRE_MESSAGE(scanned.ok(), scanned.message());
  return found;
}

status commit_windows(ledger_store& store, const std::vector<model::usage_window>& windows,
                      bool with_rollups = true) {
  write_set writes;
  model::rollup_accumulator rollups;
  for (const auto& w : windows) {
    writes.put_window(w);
    REQUIRE(rollups.add(w).ok());
  }
  if (with_rollups) writes.merge_rollups(windows.front().customer_id, rollups);
  return commit_and_wait(store, std::move(writes));
}

model::usage_window small_window(const std::string& vm, int64_t start, uint64_t cpu) {
  auto w = sample_window("acme", "eu", vm, start);
  w.cpu_time_nanos = cpu;
  w.network_tx_bytes = cpu * 10;
  return w;
}

}  // namespace

TEST_CASE("rollup keys round-trip and sort by granularity, then bucket start") {
  const model::rollup_id id{model::granularity::day, hour9 - 9 * model::kNanosPerHour, "eu", "vm"};
  auto key = keys::rollup_key("acme", id);
  REQUIRE(key.ok());
  auto decoded = keys::decode_rollup_key(*key);
  REQUIRE(decoded.ok());
  CHECK(*decoded == id);
  auto hour_key = keys::rollup_key("acme", {model::granularity::hour, hour9 + 1, "zz", "zz"});
  auto later_day =
      keys::rollup_key("acme", {model::granularity::day, id.bucket_start_ns + 1, "", ""});
  CHECK(*hour_key < *key);
  CHECK(*key < *later_day);
  CHECK(keys::decode_rollup_key(key->substr(0, key->size() - 1)).error().code() ==
        status_code::data_loss);
}

TEST_CASE("rollup values round-trip; truncated or unknown formats are data_loss") {
  model::rollup_value value;
  value.totals.cpu_time_nanos = 1;
  value.totals.window_count = 11;
  value.totals.memory_bytes_peak = UINT64_MAX;
  value.first_active_ns = -5;
  value.last_active_ns = 7;
  value.longest_window_ns = 60;
  const auto encoded = codec::encode_rollup_value(value);
  auto decoded = codec::decode_rollup_value(encoded);
  REQUIRE(decoded.ok());
  CHECK(*decoded == value);
  CHECK(codec::decode_rollup_value(encoded.substr(0, encoded.size() - 1)).error().code() ==
        status_code::data_loss);
  CHECK(codec::decode_rollup_value(encoded + "x").error().code() == status_code::data_loss);
  // Formats 1 (no longest_window) and 2 (uint64 sums) still decode.
  std::string format2;
  storage::bytes::append_u8(format2, 2);
  for (uint64_t field : {uint64_t{1}, uint64_t{0}, UINT64_MAX, uint64_t{0}, uint64_t{0},
                         uint64_t{0}, uint64_t{0}, uint64_t{0}, uint64_t{0}, uint64_t{0},
                         uint64_t{11}}) {
    storage::bytes::append_u64(format2, field);  // cpu, memory, peak, ..., window_count
  }
  storage::bytes::append_i64(format2, -5);
  storage::bytes::append_i64(format2, 7);
  const std::string format1 = "\x01" + format2.substr(1);
  storage::bytes::append_i64(format2, 60);
  auto from_format2 = codec::decode_rollup_value(format2);
  REQUIRE(from_format2.ok());
  CHECK(*from_format2 == value);
  auto old_value = codec::decode_rollup_value(format1);
  REQUIRE(old_value.ok());
  CHECK(old_value->totals == value.totals);
  CHECK(old_value->longest_window_ns == model::rollup_value::unknown_length);
  std::string other_format = encoded;
  other_format[0] = 9;
  CHECK(codec::decode_rollup_value(other_format).error().code() == status_code::data_loss);
}

TEST_CASE("rollup values keep sums past 2^64 exactly, up to 2^128-1") {
  model::rollup_value value;
  value.totals.memory_bytes_seconds = (model::usage_sum{1} << 64) + 12345;
  value.totals.cpu_time_nanos = ~model::usage_sum{0};
  value.totals.window_count = 127;  // one varint byte
  value.totals.vm_active_nanos = 128;  // two
  value.first_active_ns = 1;
  value.last_active_ns = 2;
  value.longest_window_ns = 3;
  const auto encoded = codec::encode_rollup_value(value);
  auto decoded = codec::decode_rollup_value(encoded);
  REQUIRE(decoded.ok());
  CHECK(*decoded == value);
  // Every cut of the encoding is refused, never misread.
  for (size_t size = 0; size < encoded.size(); ++size) {
    CHECK_FALSE(codec::decode_rollup_value(encoded.substr(0, size)).ok());
  }
  // A varint longer than 128 bits is corrupt.
  std::string too_long = "\x03" + std::string(19, '\xff') + std::string(1, '\x01');
  CHECK(codec::decode_rollup_value(too_long).error().code() == status_code::data_loss);
}

TEST_CASE("merge operands from separate commits add up exactly in every granularity") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  // Two commits touching the same hour bucket, and a window crossing into 10:00.
  REQUIRE(commit_windows(*store, {small_window("vm-1", hour9, 100)}).ok());
  REQUIRE(commit_windows(*store, {small_window("vm-1", hour9 + 30 * minute, 50)}).ok());
  auto crossing = small_window("vm-1", hour9 + 59 * minute + 30 * model::kNanosPerSecond, 61);
  REQUIRE(commit_windows(*store, {crossing}).ok());

  const auto hours = scan_all_rollups(*store, "acme", model::granularity::hour, hour9,
                                      hour9 + 2 * model::kNanosPerHour);
  REQUIRE(hours.size() == 2);
  const auto& h9 = hours.begin()->second;
  const auto& h10 = std::next(hours.begin())->second;
  // The crossing window is 30 s in each hour: 61 ns of CPU splits 31/30 (the
  // remainder goes to the earlier hour on a tie).
  CHECK(h9.totals.cpu_time_nanos == 100 + 50 + 31);
  CHECK(h10.totals.cpu_time_nanos == 30);
  CHECK(h9.totals.window_count == 3);
  CHECK(h10.totals.window_count == 0);
  CHECK(h9.first_active_ns == hour9);
  CHECK(h9.last_active_ns == hour9 + model::kNanosPerHour);
  CHECK(h10.first_active_ns == hour9 + model::kNanosPerHour);
  CHECK(h10.last_active_ns == crossing.window_end_ns);
  CHECK(h9.totals.vm_active_nanos == uint64_t(2 * minute + 30 * model::kNanosPerSecond));

  const int64_t day = model::bucket_start(model::granularity::day, hour9);
  const auto days =
      scan_all_rollups(*store, "acme", model::granularity::day, day, day + model::kNanosPerDay);
  REQUIRE(days.size() == 1);
  CHECK(days.begin()->second.totals.cpu_time_nanos == 100 + 50 + 61);
  CHECK(days.begin()->second.totals.network_tx_bytes == (100 + 50 + 61) * 10);
  CHECK(days.begin()->second.totals.window_count == 3);
  const int64_t month = model::bucket_start(model::granularity::month, hour9);
  const auto months = scan_all_rollups(*store, "acme", model::granularity::month, month,
                                       model::next_bucket_start(model::granularity::month, month));
  REQUIRE(months.size() == 1);
  CHECK(months.begin()->second.totals == days.begin()->second.totals);

  // Another customer's range is untouched; a scan outside the range finds nothing.
  CHECK(scan_all_rollups(*store, "acm", model::granularity::day, day, day + model::kNanosPerDay)
            .empty());
  CHECK(scan_all_rollups(*store, "acme", model::granularity::hour, hour9 - model::kNanosPerHour,
                         hour9)
            .empty());
}

TEST_CASE("retention drops raw windows and dedup entries past the cutoff, never rollups") {
  temp_dir dir;
  auto options = options_for(dir);
  int64_t now = hour9 + 10 * model::kNanosPerDay;
  options.clock = [&now] { return now; };
  options.raw_retention_ns = 7 * model::kNanosPerDay;
  auto store = open_store(options);

  const auto old_window = small_window("vm-old", hour9, 5);  // 10 days old
  const auto new_window = small_window("vm-new", hour9 + 5 * model::kNanosPerDay, 7);  // 5 days old
  REQUIRE(commit_windows(*store, {old_window, new_window}).ok());
  REQUIRE(store->apply_retention().ok());

  const auto windows = scan_all_windows(*store, "acme", 0, INT64_MAX);
  REQUIRE(windows.size() == 1);
  CHECK(windows[0].vm_id == "vm-new");
  auto stored = store->find_stored(
      {model::window_identity::of(old_window), model::window_identity::of(new_window)});
  REQUIRE(stored.ok());
  CHECK_FALSE(stored.value()[0].has_value());
  CHECK(stored.value()[1].has_value());
  const auto hours = scan_all_rollups(*store, "acme", model::granularity::hour, hour9,
                                      hour9 + model::kNanosPerHour);
  REQUIRE(hours.size() == 1);
  CHECK(hours.begin()->second.totals.cpu_time_nanos == 5);

  SUBCASE("retention 0 keeps everything") {
    store.reset();
    options.raw_retention_ns = 0;
    now += 1000 * model::kNanosPerDay;
    store = open_store(options);
    REQUIRE(store->apply_retention().ok());
    CHECK(scan_all_windows(*store, "acme", 0, INT64_MAX).size() == 1);
  }
}

TEST_CASE("opening a version 1 ledger rebuilds its rollups from the raw windows") {
  temp_dir dir;
  const auto options = options_for(dir);
  std::vector<model::usage_window> windows;
  for (int i = 0; i < 90; ++i) {
    windows.push_back(small_window(i % 2 ? "vm-a" : "vm-b", hour9 + i * minute, uint64_t(i + 1)));
  }
  {
    auto store = open_store(options);
    // What a version 1 build wrote: windows and dedup entries, no rollups.
    REQUIRE(commit_windows(*store, windows, /*with_rollups=*/false).ok());
  }
  raw_rocksdb(options.data_dir)
      .put("default", keys::schema_version_key, codec::encode_schema_version(1));

  auto store = open_store(options);
  uint64_t expected_cpu = 0;
  for (const auto& w : windows) expected_cpu += w.cpu_time_nanos;
  const int64_t day = model::bucket_start(model::granularity::day, hour9);
  const auto days =
      scan_all_rollups(*store, "acme", model::granularity::day, day, day + model::kNanosPerDay);
  REQUIRE(days.size() == 2);
  uint64_t rebuilt_cpu = 0;
  uint64_t rebuilt_windows = 0;
  for (const auto& [id, value] : days) {
    rebuilt_cpu += value.totals.cpu_time_nanos;
    rebuilt_windows += value.totals.window_count;
  }
  CHECK(rebuilt_cpu == expected_cpu);
  CHECK(rebuilt_windows == windows.size());
  store.reset();
  auto meta = raw_rocksdb(options.data_dir).entries("default");
  REQUIRE(meta.size() == 1);
  auto version = codec::decode_schema_version(meta[0].second);
  REQUIRE(version.ok());
  CHECK(version.value() == codec::current_schema_version);
}

TEST_CASE("past max_successive_merges RocksDB folds operands at write time; sums stay exact") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  uint64_t expected = 0;
  for (int i = 0; i < 40; ++i) {  // one commit per minute window: 40 operands for the hour
    REQUIRE(commit_windows(*store, {small_window("vm", hour9 + i * minute, uint64_t(i) + 1)}).ok());
    expected += uint64_t(i) + 1;
  }
  const auto hours = scan_all_rollups(*store, "acme", model::granularity::hour, hour9,
                                      hour9 + model::kNanosPerHour);
  REQUIRE(hours.size() == 1);
  CHECK(hours.begin()->second.totals.cpu_time_nanos == expected);
  CHECK(hours.begin()->second.totals.window_count == 40);
  CHECK(hours.begin()->second.first_active_ns == hour9);
  CHECK(hours.begin()->second.last_active_ns == hour9 + 40 * minute);
}
