#include "model/usage_query.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <tuple>

#include "model/money.hpp"  // int128

namespace billing::model {
namespace {

status invalid(std::string message) {
  return {status_code::invalid_argument, std::move(message)};
}

std::string_view grain_name(granularity grain) {
  switch (grain) {
    case granularity::hour:
      return "hour";
    case granularity::day:
      return "day";
    case granularity::month:
      return "month";
  }
  return "unknown";
}

status check_range(std::string_view customer_id, int64_t start_ns, int64_t end_ns) {
  if (customer_id.empty()) return invalid("customer_id is required");
  if (start_ns == kNoTimestamp || end_ns == kNoTimestamp) {
    return invalid("start_time and end_time are required");
  }
  if (start_ns >= end_ns) return invalid("start_time must be before end_time");
  return status::ok_status();
}

// The counters of usage_totals that are split in proportion to time.
constexpr std::array<usage_sum usage_totals::*, 8> kProportionalCounters = {
    &usage_totals::cpu_time_nanos,   &usage_totals::memory_bytes_seconds,
    &usage_totals::disk_read_bytes,  &usage_totals::disk_write_bytes,
    &usage_totals::disk_read_ops,    &usage_totals::disk_write_ops,
    &usage_totals::network_rx_bytes, &usage_totals::network_tx_bytes};

// The integral over [from, to) of the straight line from `before` at
// gap_start to `after` at gap_end, in byte-seconds, rounded half to even.
// Computed exactly in 128 bits: the value at the segment's midpoint is
// q + r/d, and the integral is (to - from) * (q + r/d) / 1e9.
usage_sum interpolate_gauge(uint64_t before, uint64_t after, int64_t gap_start, int64_t gap_end,
                           int64_t from, int64_t to) {
  const int128 d = int128{2} * (gap_end - gap_start);
  const int128 midpoint_numerator =
      int128{before} * d + (int128{after} - int128{before}) * (int128{from} + to - 2 * gap_start);
  const int128 q = midpoint_numerator / d;
  const int128 r = midpoint_numerator % d;
  const int128 length = to - from;
  const int128 whole = length * q;  // byte-nanoseconds of the integer part
  // Byte-seconds = seconds + fraction / denominator, with fraction possibly
  // above one denominator; rounded half to even on the whole value.
  const int128 denominator = d * kNanosPerSecond;
  const int128 fraction = (whole % kNanosPerSecond) * d + length * r;
  int128 result = whole / kNanosPerSecond + fraction / denominator;
  const int128 twice_rest = 2 * (fraction % denominator);
  if (twice_rest > denominator || (twice_rest == denominator && result % 2 != 0)) ++result;
  return static_cast<usage_sum>(result);
}

}  // namespace

status check_usage_query(const usage_query& query, const query_limits& limits) {
  if (auto bad = check_range(query.customer_id, query.start_ns, query.end_ns); !bad.ok()) {
    return bad;
  }
  const auto name = grain_name(query.grain);
  if (!is_aligned(query.grain, query.start_ns) || !is_aligned(query.grain, query.end_ns)) {
    return invalid(fmt::format(
        "start_time and end_time must be aligned to the granularity ({} boundaries, UTC)", name));
  }
  uint64_t buckets = 0;
  for (int64_t at = query.start_ns; at < query.end_ns; at = next_bucket_start(query.grain, at)) {
    if (++buckets > limits.max_buckets) {
      return invalid(fmt::format(
          "the range holds more than {} {} buckets; narrow it or use a coarser granularity",
          limits.max_buckets, name));
    }
  }
  return status::ok_status();
}

customer_usage_builder::customer_usage_builder(const usage_query& query) {
  report_.customer_id = query.customer_id;
  for (int64_t at = query.start_ns; at < query.end_ns; at = next_bucket_start(query.grain, at)) {
    bucket_index_.emplace(at, report_.buckets.size());
    report_.buckets.push_back({at, next_bucket_start(query.grain, at), {}});
  }
}

status customer_usage_builder::add(const rollup_id& id, const rollup_value& value) {
  auto bucket = bucket_index_.find(id.bucket_start_ns);
  if (bucket == bucket_index_.end()) return status::ok_status();  // outside the range
  if (status added = report_.totals.add(value.totals); !added.ok()) return added;
  if (status added = report_.buckets[bucket->second].totals.add(value.totals); !added.ok()) {
    return added;
  }
  auto region = region_index_.find(id.region);
  if (region == region_index_.end()) {
    region = region_index_.emplace(id.region, report_.regions.size()).first;
    report_.regions.push_back({id.region, {}});
  }
  if (status added = report_.regions[region->second].totals.add(value.totals); !added.ok()) {
    return added;
  }
  key_buffer_.assign(id.vm_id).push_back('\0');
  key_buffer_.append(id.region);
  auto vm = vm_index_.find(key_buffer_);
  if (vm == vm_index_.end()) {
    vm = vm_index_.emplace(key_buffer_, report_.vms.size()).first;
    report_.vms.push_back({id.vm_id, id.region, {}, 0, 0});
    vm_values_.emplace_back();
  }
  return vm_values_[vm->second].merge(value);
}

customer_usage customer_usage_builder::finish() && {
  for (size_t i = 0; i < report_.vms.size(); ++i) {
    report_.vms[i].totals = vm_values_[i].totals;
    report_.vms[i].first_seen_ns = vm_values_[i].first_active_ns;
    report_.vms[i].last_seen_ns = vm_values_[i].last_active_ns;
  }
  std::sort(report_.regions.begin(), report_.regions.end(),
            [](const region_usage& a, const region_usage& b) { return a.region < b.region; });
  std::sort(report_.vms.begin(), report_.vms.end(), [](const vm_usage& a, const vm_usage& b) {
    return std::tie(a.vm_id, a.region) < std::tie(b.vm_id, b.region);
  });
  return std::move(report_);
}

status check_window_query(const window_query& query, const query_limits& limits) {
  if (auto bad = check_range(query.customer_id, query.start_ns, query.end_ns); !bad.ok()) {
    return bad;
  }
  if (query.end_ns - query.start_ns > limits.max_window_range_ns) {
    return invalid(
        fmt::format("the window is longer than {} days; use GetCustomerUsage for "
                    "longer ranges",
                    limits.max_window_range_ns / kNanosPerDay));
  }
  return status::ok_status();
}

usage_totals usage_within(const usage_window& window, int64_t from_ns, int64_t to_ns) {
  usage_totals inside;
  const int64_t overlap_from = std::max(window.window_start_ns, from_ns);
  const int64_t overlap_to = std::min(window.window_end_ns, to_ns);
  if (overlap_from >= overlap_to) return inside;
  // Wholly inside: its hour shares sum to the window by construction.
  if (overlap_from == window.window_start_ns && overlap_to == window.window_end_ns) {
    return usage_totals::of(window);
  }
  for (const auto& hour : split_into_hours(window)) {
    const int64_t part_from = std::max(hour.hour_start_ns, window.window_start_ns);
    const int64_t part_to = std::min(hour.hour_start_ns + kNanosPerHour, window.window_end_ns);
    const int64_t in_from = std::max(part_from, from_ns);
    const int64_t in_to = std::min(part_to, to_ns);
    if (in_from >= in_to) continue;
    if (in_from == part_from && in_to == part_to) {
      for (auto field : kProportionalCounters) inside.*field += hour.totals.*field;
    } else {
      const std::vector<uint64_t> weights = {static_cast<uint64_t>(in_from - part_from),
                                             static_cast<uint64_t>(in_to - in_from),
                                             static_cast<uint64_t>(part_to - in_to)};
      for (auto field : kProportionalCounters) {
        // One window's hour share fits uint64.
        inside.*field += apportion(static_cast<uint64_t>(hour.totals.*field), weights)[1];
      }
    }
  }
  inside.vm_active_nanos = static_cast<uint64_t>(overlap_to - overlap_from);
  inside.memory_bytes_peak = std::max(window.memory_bytes_peak, window.memory_bytes_used);
  inside.window_count = window.window_start_ns >= from_ns && window.window_start_ns < to_ns ? 1 : 0;
  return inside;
}

void trace_activity(const std::vector<window_bounds>& windows, const window_query& query,
                    int64_t cadence_ns, vm_activity& activity, std::vector<usage_gap>& gaps) {
  const int64_t from = query.start_ns;
  const int64_t to = query.end_ns;
  const window_bounds* previous = nullptr;
  int64_t covered_to = 0;  // end of the activity seen so far
  for (const auto& window : windows) {
    if (previous != nullptr && window.window_start_ns - covered_to >= cadence_ns) {
      const int64_t gap_from = std::max(covered_to, from);
      const int64_t gap_to = std::min(window.window_start_ns, to);
      if (gap_from < gap_to) {
        usage_gap gap{activity.vm_id, activity.region, gap_from, gap_to, 0, false};
        if (query.interpolate_gauges) {
          gap.interpolated_memory_bytes_seconds =
              interpolate_gauge(previous->memory_bytes_used, window.memory_bytes_used, covered_to,
                                window.window_start_ns, gap_from, gap_to);
          gap.interpolated = true;
        }
        gaps.push_back(std::move(gap));
      }
    }
    const int64_t span_from = std::max(window.window_start_ns, from);
    const int64_t span_to = std::min(window.window_end_ns, to);
    if (span_from < span_to) {
      auto& spans = activity.spans;
      if (!spans.empty() && span_from - spans.back().end_ns < cadence_ns) {
        spans.back().end_ns = std::max(spans.back().end_ns, span_to);
      } else {
        spans.push_back({span_from, span_to});
      }
    }
    covered_to =
        previous == nullptr ? window.window_end_ns : std::max(covered_to, window.window_end_ns);
    previous = &window;
  }
}

void recorded_gaps::add(usage_gap gap) {
  gap.start_ns = std::max(gap.start_ns, from_ns_);
  gap.end_ns = std::min(gap.end_ns, to_ns_);
  if (gap.start_ns < gap.end_ns) gaps_.push_back(std::move(gap));
}

void recorded_gaps::merge_into(std::vector<usage_gap>& gaps) && {
  if (gaps_.empty()) return;
  gaps.insert(gaps.end(), std::make_move_iterator(gaps_.begin()),
              std::make_move_iterator(gaps_.end()));
  std::stable_sort(gaps.begin(), gaps.end(), [](const usage_gap& a, const usage_gap& b) {
    return std::tie(a.vm_id, a.region, a.start_ns) < std::tie(b.vm_id, b.region, b.start_ns);
  });
}

billing_window_builder::billing_window_builder(window_query query, const query_limits& limits)
    : query_(std::move(query)),
      recorded_(query_.start_ns, query_.end_ns),
      cadence_ns_(std::max<int64_t>(limits.expected_cadence_ns, 1)) {}

void billing_window_builder::add(usage_window window) {
  auto& windows = by_vm_[{window.vm_id, window.region}];
  windows.push_back(std::move(window));
}

void billing_window_builder::add_gap(usage_gap gap) {
  recorded_.add(std::move(gap));
}

result<billing_window> billing_window_builder::finish() && {
  billing_window report;
  report.customer_id = query_.customer_id;
  std::vector<window_bounds> bounds;
  for (auto& [key, windows] : by_vm_) {
    std::sort(windows.begin(), windows.end(), [](const usage_window& a, const usage_window& b) {
      return std::tie(a.window_start_ns, a.window_end_ns) <
             std::tie(b.window_start_ns, b.window_end_ns);
    });
    bounds.clear();
    for (const auto& window : windows) {
      bounds.push_back({window.window_start_ns, window.window_end_ns, window.memory_bytes_used});
    }
    vm_activity activity{key.first, key.second, {}, {}};
    trace_activity(bounds, query_, cadence_ns_, activity, report.gaps);
    if (activity.spans.empty()) continue;  // only windows before the range
    for (const auto& window : windows) {
      const auto inside = usage_within(window, query_.start_ns, query_.end_ns);
      if (status added = activity.totals.add(inside); !added.ok()) return added;
    }
    if (status added = report.totals.add(activity.totals); !added.ok()) return added;
    report.vms.push_back(std::move(activity));
  }
  std::move(recorded_).merge_into(report.gaps);
  return report;
}

}  // namespace billing::model
