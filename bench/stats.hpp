// Latency statistics shared by the benchmark tools.
#pragma once

#include <cstddef>
#include <vector>

namespace billing::bench {

// The value at `fraction` (0..1) of already sorted values (nearest rank below).
inline double percentile(const std::vector<double>& sorted_values, double fraction) {
  if (sorted_values.empty()) return 0;
  const auto rank = static_cast<size_t>(fraction * static_cast<double>(sorted_values.size() - 1));
  return sorted_values[rank];
}

}  // namespace billing::bench
