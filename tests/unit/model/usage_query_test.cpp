// The read side's pure rules. Expected values are computed by hand here,
// never by calling the code under test.
#include <doctest/doctest.h>

#include <random>

#include "model/usage_query.hpp"

using namespace billing;
using namespace billing::model;

namespace {

// 2026-03-14T09:00:00Z
constexpr int64_t hour9 = int64_t{1'773'478'800} * kNanosPerSecond;
constexpr int64_t minute = 60 * kNanosPerSecond;
constexpr uint64_t gib = uint64_t{1} << 30;

usage_window make_window(std::string vm, int64_t start, int64_t end, uint64_t cpu = 0) {
  usage_window w;
  w.customer_id = "acme";
  w.region = "eu";
  w.vm_id = std::move(vm);
  w.window_start_ns = start;
  w.window_end_ns = end;
  w.cpu_time_nanos = cpu;
  return w;
}

}  // namespace

TEST_CASE("usage queries must be aligned, ordered and bounded") {
  const query_limits limits;
  usage_query q{"acme", hour9, hour9 + kNanosPerHour, granularity::hour};
  CHECK(check_usage_query(q, limits).ok());
  q.customer_id.clear();
  CHECK(check_usage_query(q, limits).code() == status_code::invalid_argument);
  q = {"acme", hour9 + 1, hour9 + kNanosPerHour, granularity::hour};
  CHECK(check_usage_query(q, limits).message().find("aligned") != std::string::npos);
  q = {"acme", hour9, hour9, granularity::hour};
  CHECK(check_usage_query(q, limits).code() == status_code::invalid_argument);
  q = {"acme", hour9, hour9 + 745 * kNanosPerHour, granularity::hour};
  CHECK(check_usage_query(q, limits).message().find("more than 744") != std::string::npos);
  q = {"acme", hour9, hour9 + kNanosPerHour, granularity::day};
  CHECK(check_usage_query(q, limits).code() == status_code::invalid_argument);
  q = {"acme", kNoTimestamp, hour9, granularity::hour};
  CHECK(check_usage_query(q, limits).message().find("required") != std::string::npos);
}

TEST_CASE("the accumulator splits a window over hour, day and month buckets exactly") {
  // 23:30 to 00:30 across a day (and a month) boundary: 2026-03-31T23:30Z.
  const int64_t march31_2330 = int64_t{1'774'999'800} * kNanosPerSecond;
  auto w = make_window("vm", march31_2330, march31_2330 + kNanosPerHour, 7);
  w.memory_bytes_peak = 5;
  rollup_accumulator acc;
  REQUIRE(acc.add(w).ok());
  // 2 hours + 2 days + 2 months.
  REQUIRE(acc.buckets().size() == 6);
  uint64_t hour_cpu = 0;
  for (const auto& [id, value] : acc.buckets()) {
    if (id.grain == granularity::hour) hour_cpu += value.totals.cpu_time_nanos;
    CHECK(value.totals.vm_active_nanos == uint64_t(30 * minute));
    CHECK(value.totals.memory_bytes_peak == 5);
  }
  CHECK(hour_cpu == 7);  // 4 + 3: the remainder goes to the earlier hour on a tie
  const auto& first_hour = acc.buckets().begin()->second;
  CHECK(first_hour.totals.cpu_time_nanos == 4);
  CHECK(first_hour.first_active_ns == march31_2330);
  CHECK(first_hour.last_active_ns == march31_2330 + 30 * minute);
  const auto april =
      acc.buckets().find({granularity::month, march31_2330 + 30 * minute, "eu", "vm"});
  REQUIRE(april != acc.buckets().end());
  CHECK(april->second.totals.cpu_time_nanos == 3);
  CHECK(april->second.totals.window_count == 0);
}

TEST_CASE("usage_within partitions a window exactly, and matches hour shares on hour bounds") {
  std::mt19937_64 random(42);
  for (int round = 0; round < 500; ++round) {
    const int64_t start = hour9 + static_cast<int64_t>(random() % (2 * kNanosPerHour));
    const int64_t end = start + 1 + static_cast<int64_t>(random() % kNanosPerHour);
    auto w = make_window("vm", start, end, random() % 1'000'000'007);
    w.network_tx_bytes = random();
    w.memory_bytes_seconds = random() % 1'000'000;
    const int64_t cut = start + static_cast<int64_t>(random() % static_cast<uint64_t>(end - start));
    const auto left = usage_within(w, start - minute, cut);
    const auto right = usage_within(w, cut, end + minute);
    CAPTURE(round);
    CHECK(left.cpu_time_nanos + right.cpu_time_nanos == w.cpu_time_nanos);
    CHECK(left.network_tx_bytes + right.network_tx_bytes == w.network_tx_bytes);
    CHECK(left.memory_bytes_seconds + right.memory_bytes_seconds == w.memory_bytes_seconds);
    CHECK(left.vm_active_nanos + right.vm_active_nanos == uint64_t(end - start));
    CHECK(left.window_count + right.window_count == 1);
  }
  // A range of whole hours gives exactly the hour's share.
  auto w = make_window("vm", hour9 + 59 * minute, hour9 + 61 * minute, 3);
  CHECK(usage_within(w, hour9, hour9 + kNanosPerHour).cpu_time_nanos == 2);  // 1.5 -> tie: earlier
  CHECK(usage_within(w, hour9 + kNanosPerHour, hour9 + 2 * kNanosPerHour).cpu_time_nanos == 1);
  CHECK(usage_within(w, hour9, hour9 + 59 * minute).vm_active_nanos == 0);
}

TEST_CASE("customer usage: every bucket listed, regions and VMs consolidated") {
  usage_query q{"acme", hour9, hour9 + 3 * kNanosPerHour, granularity::hour};
  customer_usage_builder builder(q);
  rollup_value a;
  a.totals.cpu_time_nanos = 10;
  a.totals.window_count = 1;
  a.first_active_ns = hour9 + minute;
  a.last_active_ns = hour9 + 2 * minute;
  rollup_value b = a;
  b.totals.cpu_time_nanos = 5;
  b.first_active_ns = hour9 + 2 * kNanosPerHour;
  b.last_active_ns = hour9 + 2 * kNanosPerHour + minute;
  REQUIRE(builder.add({granularity::hour, hour9, "eu", "vm-1"}, a).ok());
  REQUIRE(builder.add({granularity::hour, hour9 + 2 * kNanosPerHour, "eu", "vm-1"}, b).ok());
  REQUIRE(builder.add({granularity::hour, hour9, "us", "vm-2"}, a).ok());
  const auto report = std::move(builder).finish();
  CHECK(report.totals.cpu_time_nanos == 25);
  REQUIRE(report.buckets.size() == 3);
  CHECK(report.buckets[0].totals.cpu_time_nanos == 20);
  CHECK(report.buckets[1].totals.cpu_time_nanos == 0);
  CHECK(report.buckets[1].start_ns == hour9 + kNanosPerHour);
  CHECK(report.buckets[2].end_ns == hour9 + 3 * kNanosPerHour);
  REQUIRE(report.regions.size() == 2);
  CHECK(report.regions[0].region == "eu");
  CHECK(report.regions[0].totals.cpu_time_nanos == 15);
  REQUIRE(report.vms.size() == 2);
  CHECK(report.vms[0].vm_id == "vm-1");
  CHECK(report.vms[0].first_seen_ns == hour9 + minute);
  CHECK(report.vms[0].last_seen_ns == hour9 + 2 * kNanosPerHour + minute);
}

TEST_CASE("billing window: spans, gaps at the cadence, counters never invented") {
  query_limits limits;  // 1-minute cadence
  window_query q{"acme", hour9, hour9 + kNanosPerHour, false};
  billing_window_builder builder(q, limits);
  // vm-1: 0-1, 1-2 (contiguous), then nothing until 5-6: a 3-minute gap.
  builder.add(make_window("vm-1", hour9 + 5 * minute, hour9 + 6 * minute, 30));
  builder.add(make_window("vm-1", hour9, hour9 + minute, 10));
  builder.add(make_window("vm-1", hour9 + minute, hour9 + 2 * minute, 20));
  // vm-2: a 30 s hole is jitter, not a gap; a window before the range starts
  // the activity that a hole at the start of the range interrupts.
  builder.add(make_window("vm-2", hour9 - 2 * minute, hour9 - minute, 1000));
  builder.add(make_window("vm-2", hour9 + 2 * minute, hour9 + 3 * minute, 1));
  builder.add(
      make_window("vm-2", hour9 + 3 * minute + 30 * kNanosPerSecond, hour9 + 5 * minute, 2));
  auto report = std::move(builder).finish();
  REQUIRE(report.ok());
  CHECK(report->totals.cpu_time_nanos == 63);  // vm-2's window before the range is not counted
  REQUIRE(report->vms.size() == 2);
  const auto& vm1 = report->vms[0];
  REQUIRE(vm1.spans.size() == 2);
  CHECK(vm1.spans[0].start_ns == hour9);
  CHECK(vm1.spans[0].end_ns == hour9 + 2 * minute);
  CHECK(vm1.spans[1].start_ns == hour9 + 5 * minute);
  const auto& vm2 = report->vms[1];
  REQUIRE(vm2.spans.size() == 1);
  CHECK(vm2.spans[0].start_ns == hour9 + 2 * minute);
  CHECK(vm2.spans[0].end_ns == hour9 + 5 * minute);
  REQUIRE(report->gaps.size() == 2);
  CHECK(report->gaps[0].vm_id == "vm-1");
  CHECK(report->gaps[0].start_ns == hour9 + 2 * minute);
  CHECK(report->gaps[0].end_ns == hour9 + 5 * minute);
  CHECK_FALSE(report->gaps[0].interpolated);
  CHECK(report->gaps[1].vm_id == "vm-2");
  CHECK(report->gaps[1].start_ns == hour9);  // clipped to the range
  CHECK(report->gaps[1].end_ns == hour9 + 2 * minute);
}

TEST_CASE("gauge interpolation across a gap is linear and exact, and never in the totals") {
  query_limits limits;
  window_query q{"acme", hour9, hour9 + kNanosPerHour, true};
  auto before = make_window("vm", hour9, hour9 + minute);
  before.memory_bytes_used = 1 * gib;
  auto after = make_window("vm", hour9 + 3 * minute, hour9 + 4 * minute);
  after.memory_bytes_used = 3 * gib;
  {
    billing_window_builder builder(q, limits);
    builder.add(before);
    builder.add(after);
    auto report = std::move(builder).finish();
    REQUIRE(report.ok());
    REQUIRE(report->gaps.size() == 1);
    // From 1 GiB to 3 GiB over 120 s: the average 2 GiB times 120 s.
    CHECK(report->gaps[0].interpolated_memory_bytes_seconds == 2 * gib * 120);
    CHECK(report->gaps[0].interpolated);
    CHECK(report->totals.memory_bytes_seconds == 0);
  }
  {
    // The range starts mid-gap: from 2 GiB at +2 min to 3 GiB at +3 min: 2.5 GiB x 60 s.
    q.start_ns = hour9 + 2 * minute;
    billing_window_builder builder(q, limits);
    builder.add(before);
    builder.add(after);
    auto report = std::move(builder).finish();
    REQUIRE(report.ok());
    REQUIRE(report->gaps.size() == 1);
    CHECK(report->gaps[0].start_ns == hour9 + 2 * minute);
    CHECK(report->gaps[0].interpolated_memory_bytes_seconds == 5 * gib * 30);
  }
  {
    // 1 byte to 2 bytes over 1 s: 1.5 byte-seconds rounds half to even, to 2.
    auto one = make_window("vm", hour9, hour9 + kNanosPerSecond);
    one.memory_bytes_used = 1;
    auto two = make_window("vm", hour9 + 2 * kNanosPerSecond, hour9 + 3 * kNanosPerSecond);
    two.memory_bytes_used = 2;
    query_limits fine;
    fine.expected_cadence_ns = kNanosPerSecond;
    window_query fq{"acme", hour9, hour9 + minute, true};
    billing_window_builder builder(fq, fine);
    builder.add(one);
    builder.add(two);
    auto report = std::move(builder).finish();
    REQUIRE(report.ok());
    REQUIRE(report->gaps.size() == 1);
    CHECK(report->gaps[0].interpolated_memory_bytes_seconds == 2);
  }
}

TEST_CASE("window queries are bounded") {
  query_limits limits;
  CHECK(check_window_query({"acme", hour9, hour9 + 31 * kNanosPerDay, false}, limits).ok());
  CHECK(check_window_query({"acme", hour9, hour9 + 32 * kNanosPerDay, false}, limits).code() ==
        status_code::invalid_argument);
  CHECK(check_window_query({"acme", hour9, hour9 - 1, false}, limits).code() ==
        status_code::invalid_argument);
}

TEST_CASE("billing window: recorded gaps are clipped to the range and listed in order") {
  query_limits limits;
  window_query q{"acme", hour9, hour9 + kNanosPerHour, false};
  billing_window_builder builder(q, limits);
  builder.add(make_window("vm-1", hour9, hour9 + kNanosPerHour, 10));  // contiguous: no found gap
  builder.add_gap({"vm-1", "eu", hour9 + 50 * minute, hour9 + 2 * kNanosPerHour, 0, false});
  builder.add_gap({"vm-0", "eu", hour9 - minute, hour9 + minute, 0, false});
  builder.add_gap({"vm-2", "eu", hour9 - 2 * minute, hour9 - minute, 0, false});  // outside
  auto report = std::move(builder).finish();
  REQUIRE(report.ok());
  REQUIRE(report->gaps.size() == 2);
  CHECK(report->gaps[0].vm_id == "vm-0");
  CHECK(report->gaps[0].start_ns == hour9);
  CHECK(report->gaps[0].end_ns == hour9 + minute);
  CHECK(report->gaps[1].vm_id == "vm-1");
  CHECK(report->gaps[1].start_ns == hour9 + 50 * minute);
  CHECK(report->gaps[1].end_ns == hour9 + kNanosPerHour);
  CHECK(report->totals.cpu_time_nanos == 10);
}
