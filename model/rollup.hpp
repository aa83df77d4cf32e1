// How a window's usage is attributed to the UTC hours it overlaps.
#pragma once

#include <vector>

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

// Divides `total` over `weights` (which sum to a positive value) by the
// largest-remainder rule above. Exposed for tests.
std::vector<uint64_t> apportion(uint64_t total, const std::vector<uint64_t>& weights);

}  // namespace billing::model
