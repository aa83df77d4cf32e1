#include "model/usage_totals.hpp"

#include <algorithm>
#include <array>

namespace billing::model {

status usage_totals::add(const usage_totals& other) {
  std::array<uint64_t*, 10> sums = {
      &cpu_time_nanos, &memory_bytes_seconds, &disk_read_bytes,  &disk_write_bytes, &disk_read_ops,
      &disk_write_ops, &network_rx_bytes,     &network_tx_bytes, &vm_active_nanos,  &window_count};
  std::array<uint64_t, 10> addends = {other.cpu_time_nanos,   other.memory_bytes_seconds,
                                      other.disk_read_bytes,  other.disk_write_bytes,
                                      other.disk_read_ops,    other.disk_write_ops,
                                      other.network_rx_bytes, other.network_tx_bytes,
                                      other.vm_active_nanos,  other.window_count};
  std::array<uint64_t, 10> results{};
  for (size_t i = 0; i < sums.size(); ++i) {
    if (__builtin_add_overflow(*sums[i], addends[i], &results[i])) {
      return {status_code::out_of_range, "usage total exceeds 2^64-1; narrow the query"};
    }
  }
  for (size_t i = 0; i < sums.size(); ++i) *sums[i] = results[i];
  memory_bytes_peak = std::max(memory_bytes_peak, other.memory_bytes_peak);
  return status::ok_status();
}

usage_totals usage_totals::of(const usage_window& w) {
  usage_totals t;
  t.cpu_time_nanos = w.cpu_time_nanos;
  t.memory_bytes_seconds = w.memory_bytes_seconds;
  t.memory_bytes_peak = std::max(w.memory_bytes_peak, w.memory_bytes_used);
  t.disk_read_bytes = w.disk_read_bytes;
  t.disk_write_bytes = w.disk_write_bytes;
  t.disk_read_ops = w.disk_read_ops;
  t.disk_write_ops = w.disk_write_ops;
  t.network_rx_bytes = w.network_rx_bytes;
  t.network_tx_bytes = w.network_tx_bytes;
  t.vm_active_nanos = static_cast<uint64_t>(w.duration_ns());
  t.window_count = 1;
  return t;
}

}  // namespace billing::model
