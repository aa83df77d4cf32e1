#include <doctest/doctest.h>

#include <limits>
#include <numeric>

#include "model/calendar.hpp"
#include "model/rollup.hpp"

using namespace billing::model;

namespace {

// 2026-03-14T09:00:00Z
constexpr int64_t kHour9 = int64_t{1'773'478'800} * kNanosPerSecond;

usage_window window(int64_t start, int64_t end) {
  usage_window w;
  w.customer_id = "c";
  w.region = "r";
  w.vm_id = "v";
  w.window_start_ns = start;
  w.window_end_ns = end;
  return w;
}

// The hours' sum of `field`; one window's shares sum to a uint64.
uint64_t sum_field(const std::vector<hour_share>& hours,
                   billing::model::usage_sum usage_totals::*field) {
  billing::model::usage_sum sum = 0;
  for (const auto& h : hours) sum += h.totals.*field;
  REQUIRE(sum <= UINT64_MAX);
  return static_cast<uint64_t>(sum);
}

}  // namespace

TEST_CASE("calendar buckets are UTC hours, days and months") {
  CHECK(bucket_start(granularity::hour, kHour9 + 59 * 60 * kNanosPerSecond) == kHour9);
  CHECK(bucket_start(granularity::day, kHour9) == kHour9 - 9 * kNanosPerHour);
  // 2026-03-01T00:00:00Z
  const int64_t march = int64_t{1'772'323'200} * kNanosPerSecond;
  CHECK(bucket_start(granularity::month, kHour9) == march);
  // 2026-04-01T00:00:00Z: March has 31 days
  CHECK(next_bucket_start(granularity::month, march) == march + 31 * kNanosPerDay);
  // 2028 is a leap year: February 2028 has 29 days
  const int64_t feb2028 = int64_t{1'832'976'000} * kNanosPerSecond;
  CHECK(is_aligned(granularity::month, feb2028));
  CHECK(next_bucket_start(granularity::month, feb2028) == feb2028 + 29 * kNanosPerDay);
  CHECK(bucket_start(granularity::hour, -1) == -kNanosPerHour);
  CHECK_FALSE(is_aligned(granularity::day, kHour9));
}

TEST_CASE("a window inside one hour is not split") {
  auto w = window(kHour9 + 60 * kNanosPerSecond, kHour9 + 120 * kNanosPerSecond);
  w.cpu_time_nanos = 12345;
  auto hours = split_into_hours(w);
  REQUIRE(hours.size() == 1);
  CHECK(hours[0].hour_start_ns == kHour9);
  CHECK(hours[0].totals.cpu_time_nanos == 12345);
  CHECK(hours[0].totals.vm_active_nanos == uint64_t(60 * kNanosPerSecond));
  CHECK(hours[0].totals.window_count == 1);
}

TEST_CASE("a window across an hour boundary splits exactly by overlap") {
  // 20 s before 10:00 and 40 s after.
  auto w = window(kHour9 + kNanosPerHour - 20 * kNanosPerSecond,
                  kHour9 + kNanosPerHour + 40 * kNanosPerSecond);
  w.cpu_time_nanos = 60'000;
  w.network_tx_bytes = 100;  // 33.33 / 66.67
  w.disk_read_ops = 1;       // 0.33 / 0.67: the single unit goes to the larger remainder
  w.memory_bytes_peak = 77;
  auto hours = split_into_hours(w);
  REQUIRE(hours.size() == 2);
  CHECK(hours[0].totals.cpu_time_nanos == 20'000);
  CHECK(hours[1].totals.cpu_time_nanos == 40'000);
  CHECK(hours[0].totals.network_tx_bytes == 33);
  CHECK(hours[1].totals.network_tx_bytes == 67);
  CHECK(hours[0].totals.disk_read_ops == 0);
  CHECK(hours[1].totals.disk_read_ops == 1);
  CHECK(hours[0].totals.memory_bytes_peak == 77);
  CHECK(hours[1].totals.memory_bytes_peak == 77);
  CHECK(hours[0].totals.window_count == 1);
  CHECK(hours[1].totals.window_count == 0);
  CHECK(hours[0].totals.vm_active_nanos + hours[1].totals.vm_active_nanos ==
        uint64_t(60 * kNanosPerSecond));
}

TEST_CASE("shares always sum to the window's values, even at the extremes") {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  for (int64_t offset : {int64_t{1}, int64_t{7}, kNanosPerSecond, 1800 * kNanosPerSecond - 3}) {
    // Windows spanning 3 hours with awkward offsets.
    auto w = window(kHour9 + offset, kHour9 + 2 * kNanosPerHour + offset + 1);
    w.cpu_time_nanos = max;
    w.memory_bytes_seconds = 1'000'000'007;
    w.network_rx_bytes = 2;
    auto hours = split_into_hours(w);
    CAPTURE(offset);
    REQUIRE(hours.size() == 3);
    CHECK(sum_field(hours, &usage_totals::cpu_time_nanos) == max);
    CHECK(sum_field(hours, &usage_totals::memory_bytes_seconds) == 1'000'000'007);
    CHECK(sum_field(hours, &usage_totals::network_rx_bytes) == 2);
    CHECK(sum_field(hours, &usage_totals::vm_active_nanos) == uint64_t(w.duration_ns()));
  }
}

TEST_CASE("apportion breaks ties toward the earlier share") {
  CHECK(apportion(1, {1, 1, 1}) == std::vector<uint64_t>{1, 0, 0});
  CHECK(apportion(2, {1, 1, 1}) == std::vector<uint64_t>{1, 1, 0});
  CHECK(apportion(10, {1, 2, 2}) == std::vector<uint64_t>{2, 4, 4});
  CHECK(apportion(0, {5, 5}) == std::vector<uint64_t>{0, 0});
}

TEST_CASE("totals add exactly and refuse to overflow") {
  usage_totals a;
  a.cpu_time_nanos = 5;
  a.memory_bytes_peak = 10;
  usage_totals b;
  b.cpu_time_nanos = 7;
  b.memory_bytes_peak = 3;
  CHECK(a.add(b).ok());
  CHECK(a.cpu_time_nanos == 12);
  CHECK(a.memory_bytes_peak == 10);
  usage_totals huge;
  huge.network_tx_bytes = billing::model::kUsageSumMax;
  huge.cpu_time_nanos = 1;
  usage_totals one;
  one.network_tx_bytes = 1;
  one.cpu_time_nanos = 1;
  const auto before = huge;
  CHECK(huge.add(one).code() == billing::status_code::out_of_range);
  CHECK(huge == before);  // unchanged on failure, the other fields too
}

TEST_CASE("totals pass 2^64 exactly, to the bound of the largest customer and beyond") {
  using billing::model::format_usage_sum;
  using billing::model::kUsageSumMax;
  using billing::model::saturate_u64;
  using billing::model::usage_sum;
  // A window of maximal counters, added 4 times: 4 * (2^64-1), exact.
  usage_totals window;
  window.memory_bytes_seconds = UINT64_MAX;
  usage_totals sum;
  for (int i = 0; i < 4; ++i) REQUIRE(sum.add(window).ok());
  CHECK(format_usage_sum(sum.memory_bytes_seconds) == "73786976294838206460");
  CHECK(saturate_u64(sum.memory_bytes_seconds) == UINT64_MAX);
  CHECK(saturate_u64(usage_sum{UINT64_MAX}) == UINT64_MAX);
  CHECK(saturate_u64(usage_sum{7}) == 7);
  // 10^6 VMs of 24 TiB for 31 days: 24 * 2^40 * 86400 * 31 * 10^6 byte-seconds.
  const usage_sum month = usage_sum{24} * (usage_sum{1} << 40) * 86'400 * 31 * 1'000'000;
  usage_totals vm_month;
  vm_month.memory_bytes_seconds = month / 1'000'000;
  usage_totals fleet;
  for (int i = 0; i < 1'000; ++i) {
    usage_totals thousand = vm_month;
    thousand.memory_bytes_seconds *= 1'000;
    REQUIRE(fleet.add(thousand).ok());
  }
  CHECK(fleet.memory_bytes_seconds == month);
  CHECK(format_usage_sum(month) == "70678366652045721600000000");
  // 10^6 cores for 31 days in nanoseconds.
  usage_totals cores;
  cores.cpu_time_nanos = usage_sum{1'000'000} * 86'400 * 31 * 1'000'000'000;
  CHECK(format_usage_sum(cores.cpu_time_nanos) == "2678400000000000000000");
  // The ceiling itself, and its decimal digits.
  usage_totals top;
  top.disk_read_ops = kUsageSumMax - 1;
  usage_totals one;
  one.disk_read_ops = 1;
  REQUIRE(top.add(one).ok());
  CHECK(format_usage_sum(top.disk_read_ops) == "170141183460469231731687303715884105727");
  CHECK(top.add(one).code() == billing::status_code::out_of_range);
  CHECK(format_usage_sum(0) == "0");
}
