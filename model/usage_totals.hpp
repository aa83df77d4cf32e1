// Exact usage sums: what rollups store and queries return.
#pragma once

#include <cstdint>
#include <string>

#include "model/status.hpp"
#include "model/usage_window.hpp"

namespace billing::model {

// A sum of uint64 window counters. 128 bits, because a month of one large
// customer passes 2^64 (10^6 VMs of 24 TiB hold ~7e25 byte-seconds a month;
// 10^6 cores ~2.6e21 ns), while 2^128 ~ 3.4e38 cannot be reached by fewer
// than 2^63 windows of uint64 counters.
using usage_sum = unsigned __int128;

// The largest total a ledger keeps: 2^127-1, so that every total also fits
// the signed 128-bit quantities of pricing.
inline constexpr usage_sum kUsageSumMax = (usage_sum{1} << 127) - 1;

// The exact decimal digits of `value`.
std::string format_usage_sum(usage_sum value);

// The uint64 view of a sum for the wire's uint64 fields: saturates at
// 2^64-1 (the decimal twin field carries the exact value).
inline uint64_t saturate_u64(usage_sum value) {
  return value > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(value);
}

struct usage_totals {
  usage_sum cpu_time_nanos = 0;
  usage_sum memory_bytes_seconds = 0;
  uint64_t memory_bytes_peak = 0;  // a maximum, not a sum
  usage_sum disk_read_bytes = 0;
  usage_sum disk_write_bytes = 0;
  usage_sum disk_read_ops = 0;
  usage_sum disk_write_ops = 0;
  usage_sum network_rx_bytes = 0;
  usage_sum network_tx_bytes = 0;
  usage_sum vm_active_nanos = 0;
  usage_sum window_count = 0;  // windows that start in the bucket

  // Adds `other` (peak: maximum). out_of_range if any sum would exceed
  // kUsageSumMax; *this is then unchanged. Amounts are never silently wrapped.
  status add(const usage_totals& other);

  // The whole window as totals (window_count 1).
  static usage_totals of(const usage_window& window);

  friend bool operator==(const usage_totals&, const usage_totals&) = default;
};

// The summed counters of usage_totals (every field but the peak), in the
// order of the wire's UsageTotals fields.
inline constexpr usage_sum usage_totals::*kUsageSumFields[] = {
    &usage_totals::cpu_time_nanos,   &usage_totals::memory_bytes_seconds,
    &usage_totals::disk_read_bytes,  &usage_totals::disk_write_bytes,
    &usage_totals::disk_read_ops,    &usage_totals::disk_write_ops,
    &usage_totals::network_rx_bytes, &usage_totals::network_tx_bytes,
    &usage_totals::vm_active_nanos,  &usage_totals::window_count};

}  // namespace billing::model
