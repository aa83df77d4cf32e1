// How a window's usage is attributed to the UTC hours it overlaps.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "model/calendar.hpp"
#include "model/status.hpp"
#include "model/usage_totals.hpp"
#include "model/usage_window.hpp"

namespace billing::model {

struct hour_share {
  int64_t hour_start_ns = 0;
  usage_totals totals;
};

// Splits a valid window over the hours it overlaps, in hour order.
// Counters are divided in proportion to the overlap with exact integer
// arithmetic; each counter's rounding remainder goes one unit at a time to
// the hours with the largest fractional parts (earlier hour first on ties),
// so the shares always sum to the window's value. vm_active_nanos is the
// exact overlap; peak memory is the window's peak in every hour it touches;
// window_count is 1 in the hour where the window starts.
std::vector<hour_share> split_into_hours(const usage_window& window);

// Which rollup bucket: one (region, vm) in one UTC hour, day or month.
// rollup_id owns its strings; rollup_id_view only refers to them, so that
// finding a bucket per window copies no strings.
template <class Text>
struct basic_rollup_id {
  granularity grain = granularity::hour;
  int64_t bucket_start_ns = 0;
  Text region;
  Text vm_id;
  friend auto operator<=>(const basic_rollup_id&, const basic_rollup_id&) = default;
};
using rollup_id = basic_rollup_id<std::string>;
using rollup_id_view = basic_rollup_id<std::string_view>;

// Orders rollup_ids and their views together (std::map's heterogeneous lookup).
struct rollup_id_less {
  using is_transparent = void;
  static rollup_id_view view(const rollup_id& id) {
    return {id.grain, id.bucket_start_ns, id.region, id.vm_id};
  }
  static const rollup_id_view& view(const rollup_id_view& id) { return id; }
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return view(a) < view(b);
  }
};

// What a rollup bucket holds: exact sums (peak: maximum) and the earliest and
// latest instants the VM was active inside the bucket, clipped to it, which
// give exact first/last-seen times without reading raw windows.
struct rollup_value {
  usage_totals totals;
  int64_t first_active_ns = std::numeric_limits<int64_t>::max();
  int64_t last_active_ns = std::numeric_limits<int64_t>::min();
  // The longest window that contributed: a billing-window query scans back
  // only this far before its range. unknown_length for values written before
  // it was recorded.
  int64_t longest_window_ns = 0;
  static constexpr int64_t unknown_length = std::numeric_limits<int64_t>::max();

  // Adds `other` into this one; out_of_range (and no change) on overflow.
  status merge(const rollup_value& other);
  bool empty() const { return totals.window_count == 0 && totals.vm_active_nanos == 0; }
  friend bool operator==(const rollup_value&, const rollup_value&) = default;
};

// Sums windows into their hourly, daily and monthly buckets, so that a group
// of windows costs one rollup write per touched bucket rather than one per
// window. Daily and monthly buckets are sums of the hourly shares, so every
// granularity agrees exactly with the hours it covers.
class rollup_accumulator {
 public:
  using bucket_map = std::map<rollup_id, rollup_value, rollup_id_less>;
  // Adds a valid window; out_of_range if a sum would pass kUsageSumMax
  // (nothing of the window is added then). With `stored` (the buckets' stored
  // totals, holding every bucket of the window that is stored), the check is
  // of stored total + accumulated + window, so the totals this accumulator
  // will be added to cannot overflow either.
  status add(const usage_window& window, const bucket_map* stored = nullptr);
  // Adds every bucket of `other`, checked like add(); nothing on failure.
  status add_all(const rollup_accumulator& other, const bucket_map* stored = nullptr);
  const bucket_map& buckets() const { return buckets_; }
  bool empty() const { return buckets_.empty(); }

 private:
  bucket_map buckets_;
};

// The hourly, daily and monthly buckets a valid window adds to, as views of
// the window's strings.
std::vector<rollup_id_view> rollup_buckets_of(const usage_window& window);

// Divides `total` over `weights` (which sum to a positive value) by the
// largest-remainder rule above. Exposed for tests.
std::vector<uint64_t> apportion(uint64_t total, const std::vector<uint64_t>& weights);

}  // namespace billing::model
