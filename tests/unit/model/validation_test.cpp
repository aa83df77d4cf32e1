#include <doctest/doctest.h>

#include <limits>

#include "model/validation.hpp"

using namespace billing::model;

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kNow = int64_t{1'790'000'000} * kSecond;  // 2026-09-21

usage_window valid_window() {
  usage_window w;
  w.customer_id = "cust-1";
  w.region = "us-east-1";
  w.vm_id = "vm-1";
  w.window_start_ns = kNow - 120 * kSecond;
  w.window_end_ns = kNow - 60 * kSecond;
  w.sampled_at_ns = w.window_end_ns;
  w.cpu_time_nanos = 30 * kSecond;
  w.cpu_utilization_pct = 50;
  w.cpu_cores_used = 0.5;
  w.memory_bytes_used = 1 << 30;
  w.memory_bytes_peak = 2u << 30;
  w.memory_bytes_seconds = uint64_t{60} << 30;
  w.disk_read_bytes = 1000;
  w.network_tx_bytes = 5000;
  return w;
}

reject_reason reason_of(const usage_window& w, const validation_limits& limits = {}) {
  auto r = validate_window(w, limits, kNow);
  return r ? r->reason : reject_reason::none;
}

}  // namespace

TEST_CASE("a plausible window passes") {
  CHECK(reason_of(valid_window()) == reject_reason::none);
}

TEST_CASE("ids are required, bounded and free of control characters") {
  auto w = valid_window();
  w.customer_id.clear();
  CHECK(reason_of(w) == reject_reason::missing_id);
  w = valid_window();
  w.vm_id.clear();
  CHECK(reason_of(w) == reject_reason::missing_id);
  w = valid_window();
  w.region.clear();
  CHECK(reason_of(w) == reject_reason::missing_id);
  w = valid_window();
  w.vm_id = std::string(129, 'v');
  CHECK(reason_of(w) == reject_reason::invalid_id);
  w.vm_id = std::string(128, 'v');
  CHECK(reason_of(w) == reject_reason::none);
  w.customer_id = std::string("a\0b", 3);
  CHECK(reason_of(w) == reject_reason::invalid_id);
  w.customer_id = "tab\there";
  CHECK(reason_of(w) == reject_reason::invalid_id);
}

TEST_CASE("the window must be present, ordered and not too long") {
  auto w = valid_window();
  w.window_start_ns = kNoTimestamp;
  CHECK(reason_of(w) == reject_reason::invalid_window);
  w = valid_window();
  w.window_end_ns = w.window_start_ns;
  CHECK(reason_of(w) == reject_reason::invalid_window);
  w.window_end_ns = w.window_start_ns - 1;
  CHECK(reason_of(w) == reject_reason::invalid_window);
  w = valid_window();
  w.window_start_ns = w.window_end_ns - 3601 * kSecond;
  CHECK(reason_of(w) == reject_reason::invalid_window);
  w.window_start_ns = w.window_end_ns - 3600 * kSecond;
  w.cpu_time_nanos = 0;
  CHECK(reason_of(w) == reject_reason::none);
}

TEST_CASE("timestamps must lie between 2000 and now plus the allowed skew") {
  auto w = valid_window();
  w.window_start_ns = kEarliestValidNs - 1;
  CHECK(reason_of(w) == reject_reason::timestamp_out_of_range);
  w = valid_window();
  w.window_start_ns = kNow + 200 * kSecond;
  w.window_end_ns = kNow + 260 * kSecond;
  w.sampled_at_ns = 0;
  CHECK(reason_of(w) == reject_reason::none);  // within 300 s of skew
  w.window_end_ns = kNow + 301 * kSecond;
  CHECK(reason_of(w) == reject_reason::timestamp_out_of_range);
  w = valid_window();
  w.sampled_at_ns = kNow + 3600 * kSecond;
  CHECK(reason_of(w) == reject_reason::timestamp_out_of_range);
  w.sampled_at_ns = kNoTimestamp;
  CHECK(reason_of(w) == reject_reason::timestamp_out_of_range);
}

TEST_CASE("counters beyond what the window allows are implausible") {
  validation_limits limits;
  limits.max_vcpus = 4;
  auto w = valid_window();  // 60 s window
  w.cpu_time_nanos = 240 * kSecond;
  CHECK(reason_of(w, limits) == reject_reason::none);
  w.cpu_time_nanos = 240 * kSecond + 1;
  CHECK(reason_of(w, limits) == reject_reason::implausible_value);

  w = valid_window();
  w.memory_bytes_peak = w.memory_bytes_used - 1;
  CHECK(reason_of(w) == reject_reason::implausible_value);
  w = valid_window();
  w.memory_bytes_seconds = w.memory_bytes_peak * 60;
  CHECK(reason_of(w) == reject_reason::none);
  w.memory_bytes_seconds += 1;
  CHECK(reason_of(w) == reject_reason::implausible_value);

  w = valid_window();
  w.network_rx_bytes = std::numeric_limits<uint64_t>::max();
  CHECK(reason_of(w) == reject_reason::implausible_value);
  w = valid_window();
  w.disk_write_ops = std::numeric_limits<uint64_t>::max();
  CHECK(reason_of(w) == reject_reason::implausible_value);
}

TEST_CASE("informational doubles must be finite and in range") {
  auto w = valid_window();
  w.cpu_utilization_pct = std::numeric_limits<double>::quiet_NaN();
  CHECK(reason_of(w) == reject_reason::implausible_value);
  w = valid_window();
  w.cpu_cores_used = -1;
  CHECK(reason_of(w) == reject_reason::implausible_value);
  w = valid_window();
  w.cpu_cores_used = std::numeric_limits<double>::infinity();
  CHECK(reason_of(w) == reject_reason::implausible_value);
}

TEST_CASE("duplicates are judged on billed values only") {
  auto a = valid_window();
  auto b = a;
  b.sampled_at_ns += 5;
  b.cpu_utilization_pct = 99;
  CHECK(a.same_billed_values(b));
  b.network_tx_bytes += 1;
  CHECK_FALSE(a.same_billed_values(b));
  CHECK(window_identity::of(a) == window_identity::of(b));
  b.window_end_ns += 1;
  CHECK_FALSE(window_identity::of(a) == window_identity::of(b));
}

TEST_CASE("check_id is validate_id as an invalid_argument status naming the field") {
  const billing::model::validation_limits limits;
  CHECK(billing::model::check_id("batch_id", "b-1", limits).ok());
  auto missing = billing::model::check_id("batch_id", "", limits);
  CHECK(missing.code() == billing::status_code::invalid_argument);
  CHECK(missing.message().find("batch_id") != std::string::npos);
  auto too_long = billing::model::check_id("customer_id", std::string(200, 'x'), limits);
  CHECK(too_long.code() == billing::status_code::invalid_argument);
}
