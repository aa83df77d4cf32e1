#include "model/rollup.hpp"

#include <algorithm>
#include <numeric>
#include <utility>

#include "model/calendar.hpp"

namespace billing::model {

std::vector<uint64_t> apportion(uint64_t total, const std::vector<uint64_t>& weights) {
  if (weights.size() == 1) return {total};
  using u128 = unsigned __int128;
  const u128 weight_sum = std::accumulate(weights.begin(), weights.end(), u128{0});
  std::vector<uint64_t> shares(weights.size());
  std::vector<u128> remainders(weights.size());
  uint64_t assigned = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const u128 scaled = static_cast<u128>(total) * weights[i];
    shares[i] = static_cast<uint64_t>(scaled / weight_sum);
    remainders[i] = scaled % weight_sum;
    assigned += shares[i];
  }
  // Fewer units are left than there are shares, so each gets at most one.
  uint64_t left = total - assigned;
  std::vector<size_t> order(weights.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return remainders[a] > remainders[b]; });
  for (size_t i = 0; left > 0; ++i, --left) ++shares[order[i]];
  return shares;
}

std::vector<hour_share> split_into_hours(const usage_window& w) {
  std::vector<hour_share> hours;
  std::vector<uint64_t> overlaps;
  for (int64_t hour = bucket_start(granularity::hour, w.window_start_ns); hour < w.window_end_ns;
       hour += kNanosPerHour) {
    const int64_t from = std::max(hour, w.window_start_ns);
    const int64_t to = std::min(hour + kNanosPerHour, w.window_end_ns);
    hours.push_back({hour, {}});
    overlaps.push_back(static_cast<uint64_t>(to - from));
  }
  const usage_totals whole = usage_totals::of(w);
  if (hours.size() == 1) {  // most windows: the whole window is its hour's share
    hours.front().totals = whole;
    hours.front().totals.vm_active_nanos = overlaps.front();
    hours.front().totals.window_count = 1;
    return hours;
  }
  // One window's counters fit uint64, so its shares do too.
  auto spread = [&](usage_sum total, usage_sum usage_totals::*field) {
    const auto shares = apportion(static_cast<uint64_t>(total), overlaps);
    for (size_t i = 0; i < hours.size(); ++i) hours[i].totals.*field = shares[i];
  };
  spread(whole.cpu_time_nanos, &usage_totals::cpu_time_nanos);
  spread(whole.memory_bytes_seconds, &usage_totals::memory_bytes_seconds);
  spread(whole.disk_read_bytes, &usage_totals::disk_read_bytes);
  spread(whole.disk_write_bytes, &usage_totals::disk_write_bytes);
  spread(whole.disk_read_ops, &usage_totals::disk_read_ops);
  spread(whole.disk_write_ops, &usage_totals::disk_write_ops);
  spread(whole.network_rx_bytes, &usage_totals::network_rx_bytes);
  spread(whole.network_tx_bytes, &usage_totals::network_tx_bytes);
  for (size_t i = 0; i < hours.size(); ++i) {
    hours[i].totals.vm_active_nanos = overlaps[i];
    hours[i].totals.memory_bytes_peak = whole.memory_bytes_peak;
  }
  if (!hours.empty()) hours.front().totals.window_count = 1;
  return hours;
}

status rollup_value::merge(const rollup_value& other) {
  if (status added = totals.add(other.totals); !added.ok()) return added;
  first_active_ns = std::min(first_active_ns, other.first_active_ns);
  last_active_ns = std::max(last_active_ns, other.last_active_ns);
  longest_window_ns = std::max(longest_window_ns, other.longest_window_ns);
  return status::ok_status();
}

namespace {

// A window's (or accumulator's) share of one bucket.
struct bucket_share {
  rollup_id_view id;
  rollup_value value;
  rollup_accumulator::bucket_map::iterator accumulated;
};

// Checks every share against what is accumulated and stored, so that a
// failure adds nothing; then adds them all.
status add_shares(rollup_accumulator::bucket_map& buckets, std::vector<bucket_share>& shares,
                  const rollup_accumulator::bucket_map* stored) {
  for (auto& share : shares) {
    share.accumulated = buckets.find(share.id);
    if (share.accumulated != buckets.end()) {
      rollup_value sum = share.accumulated->second;
      if (status merged = sum.merge(share.value); !merged.ok()) return merged;
      share.value = sum;
    }
    if (stored == nullptr) continue;
    if (auto total = stored->find(share.id); total != stored->end()) {
      rollup_value sum = total->second;
      if (status merged = sum.merge(share.value); !merged.ok()) return merged;
    }
  }
  for (auto& share : shares) {
    if (share.accumulated != buckets.end()) {
      share.accumulated->second = share.value;
    } else {
      buckets.emplace(rollup_id{share.id.grain, share.id.bucket_start_ns,
                                std::string(share.id.region), std::string(share.id.vm_id)},
                      share.value);
    }
  }
  return status::ok_status();
}

}  // namespace

status rollup_accumulator::add(const usage_window& window, const bucket_map* stored) {
  // The window's share of each bucket it touches. Hours come in order, so
  // the hours of one day (or month) are consecutive and fold into one share:
  // every bucket appears once, and checking each against its stored value
  // checks the whole window.
  std::vector<bucket_share> shares;
  const auto hours = split_into_hours(window);
  shares.reserve(hours.size() * 3);
  for (auto grain : {granularity::hour, granularity::day, granularity::month}) {
    const size_t first_of_grain = shares.size();
    for (const auto& hour : hours) {
      rollup_value value;
      value.totals = hour.totals;
      value.first_active_ns = std::max(hour.hour_start_ns, window.window_start_ns);
      value.last_active_ns = std::min(hour.hour_start_ns + kNanosPerHour, window.window_end_ns);
      value.longest_window_ns = window.duration_ns();
      const int64_t bucket = bucket_start(grain, hour.hour_start_ns);
      if (shares.size() > first_of_grain && shares.back().id.bucket_start_ns == bucket) {
        if (status merged = shares.back().value.merge(value); !merged.ok()) return merged;
        continue;
      }
      shares.push_back({{grain, bucket, window.region, window.vm_id}, value, buckets_.end()});
    }
  }
  return add_shares(buckets_, shares, stored);
}

status rollup_accumulator::add_all(const rollup_accumulator& other, const bucket_map* stored) {
  std::vector<bucket_share> shares;
  shares.reserve(other.buckets_.size());
  for (const auto& [id, value] : other.buckets_) {
    shares.push_back({rollup_id_less::view(id), value, buckets_.end()});
  }
  return add_shares(buckets_, shares, stored);
}

std::vector<rollup_id_view> rollup_buckets_of(const usage_window& window) {
  std::vector<rollup_id_view> ids;
  for (auto grain : {granularity::hour, granularity::day, granularity::month}) {
    for (int64_t bucket = bucket_start(grain, window.window_start_ns);
         bucket < window.window_end_ns; bucket = next_bucket_start(grain, bucket)) {
      ids.push_back({grain, bucket, window.region, window.vm_id});
    }
  }
  return ids;
}

}  // namespace billing::model
