// Exact usage sums: what rollups store and queries return.
#pragma once

#include <cstdint>

#include "model/status.hpp"
#include "model/usage_window.hpp"

namespace billing::model {

struct usage_totals {
  uint64_t cpu_time_nanos = 0;
  uint64_t memory_bytes_seconds = 0;
  uint64_t memory_bytes_peak = 0;  // a maximum, not a sum
  uint64_t disk_read_bytes = 0;
  uint64_t disk_write_bytes = 0;
  uint64_t disk_read_ops = 0;
  uint64_t disk_write_ops = 0;
  uint64_t network_rx_bytes = 0;
  uint64_t network_tx_bytes = 0;
  uint64_t vm_active_nanos = 0;
  uint64_t window_count = 0;  // windows that start in the bucket

  // Adds `other` (peak: maximum). out_of_range if any sum would exceed
  // uint64; *this is then unchanged. Amounts are never silently wrapped.
  status add(const usage_totals& other);

  // The whole window as totals (window_count 1).
  static usage_totals of(const usage_window& window);

  friend bool operator==(const usage_totals&, const usage_totals&) = default;
};

}  // namespace billing::model
