#include "model/usage_totals.hpp"

#include <algorithm>
#include <array>

namespace billing::model {

std::string format_usage_sum(usage_sum value) {
  if (value == 0) return "0";
  std::string digits;
  while (value != 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  }
  std::reverse(digits.begin(), digits.end());
  return digits;
}

status usage_totals::add(const usage_totals& other) {
  std::array<usage_sum, std::size(kUsageSumFields)> results{};
  for (size_t i = 0; i < results.size(); ++i) {
    const usage_sum a = this->*kUsageSumFields[i];
    const usage_sum b = other.*kUsageSumFields[i];
    if (a > kUsageSumMax || b > kUsageSumMax - a) {
      return {status_code::out_of_range, "usage total exceeds 2^127-1"};
    }
    results[i] = a + b;
  }
  for (size_t i = 0; i < results.size(); ++i) this->*kUsageSumFields[i] = results[i];
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
