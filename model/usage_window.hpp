// The unit of metering: one VM's usage over [window_start, window_end).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

namespace billing::model {

struct usage_window {
  std::string customer_id;
  std::string region;
  std::string vm_id;
  // Unix nanoseconds. A timestamp that cannot be represented (or is absent)
  // is kNoTimestamp, which validation rejects.
  int64_t sampled_at_ns = 0;
  int64_t window_start_ns = 0;
  int64_t window_end_ns = 0;

  uint64_t cpu_time_nanos = 0;
  // Informational, as sent by metald; never billed.
  double cpu_utilization_pct = 0;
  double cpu_cores_used = 0;

  uint64_t memory_bytes_used = 0;
  uint64_t memory_bytes_peak = 0;
  uint64_t memory_bytes_seconds = 0;

  uint64_t disk_read_bytes = 0;
  uint64_t disk_write_bytes = 0;
  uint64_t disk_read_ops = 0;
  uint64_t disk_write_ops = 0;

  uint64_t network_rx_bytes = 0;
  uint64_t network_tx_bytes = 0;

  int64_t duration_ns() const { return window_end_ns - window_start_ns; }

  // The billed values; two windows with the same identity are duplicates
  // exactly when these are equal. Informational fields (sampling timestamp,
  // utilisation doubles) are not part of it: a retry may recompute them.
  auto billed_values() const {
    return std::tie(cpu_time_nanos, memory_bytes_used, memory_bytes_peak, memory_bytes_seconds,
                    disk_read_bytes, disk_write_bytes, disk_read_ops, disk_write_ops,
                    network_rx_bytes, network_tx_bytes);
  }
  bool same_billed_values(const usage_window& other) const {
    return billed_values() == other.billed_values();
  }
};

inline constexpr int64_t kNoTimestamp = INT64_MIN;

// What makes a window unique: (customer_id, region, vm_id, window_start, window_end).
// `Text` is std::string, or std::string_view for an identity read in place
// (valid only while the bytes it views are).
template <class Text>
struct basic_window_identity {
  Text customer_id;
  Text region;
  Text vm_id;
  int64_t window_start_ns = 0;
  int64_t window_end_ns = 0;

  static basic_window_identity of(const usage_window& w) {
    return {w.customer_id, w.region, w.vm_id, w.window_start_ns, w.window_end_ns};
  }
  friend auto operator<=>(const basic_window_identity&, const basic_window_identity&) = default;
};
using window_identity = basic_window_identity<std::string>;
using window_identity_view = basic_window_identity<std::string_view>;

}  // namespace billing::model
