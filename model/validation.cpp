#include "model/validation.hpp"

#include <fmt/format.h>

#include <cmath>

#include "model/calendar.hpp"

namespace billing::model {
namespace {

// ceil(rate * window_ns / 1e9) without overflow: the most a counter can grow
// at `per_second` over the window.
unsigned __int128 max_over_window(uint64_t per_second, int64_t window_ns) {
  auto product = static_cast<unsigned __int128>(per_second) * static_cast<uint64_t>(window_ns);
  return (product + kNanosPerSecond - 1) / kNanosPerSecond;
}

std::optional<rejection> implausible(std::string message) {
  return rejection{reject_reason::implausible_value, std::move(message)};
}

}  // namespace

std::optional<rejection> validate_id(std::string_view field, std::string_view value,
                                     const validation_limits& limits) {
  if (value.empty())
    return rejection{reject_reason::missing_id, fmt::format("{} is required", field)};
  if (value.size() > limits.max_id_bytes) {
    return rejection{reject_reason::invalid_id,
                     fmt::format("{} is {} bytes long; at most {} are allowed", field, value.size(),
                                 limits.max_id_bytes)};
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      return rejection{reject_reason::invalid_id,
                       fmt::format("{} contains a control character", field)};
    }
  }
  return std::nullopt;
}

status check_id(std::string_view field, std::string_view value, const validation_limits& limits) {
  if (auto bad = validate_id(field, value, limits)) {
    return {status_code::invalid_argument, std::move(bad->message)};
  }
  return status::ok_status();
}

std::optional<rejection> validate_window(const usage_window& w, const validation_limits& limits,
                                         int64_t now_ns) {
  if (auto r = validate_id("customer_id", w.customer_id, limits)) return r;
  if (auto r = validate_id("region", w.region, limits)) return r;
  if (auto r = validate_id("vm_id", w.vm_id, limits)) return r;

  if (w.window_start_ns == kNoTimestamp || w.window_end_ns == kNoTimestamp) {
    return rejection{reject_reason::invalid_window,
                     "window_start and window_end are required and must be valid timestamps"};
  }
  const int64_t latest = now_ns + limits.max_clock_skew_ns;
  auto out_of_range = [&](std::string_view field, int64_t ns) -> std::optional<rejection> {
    if (ns < kEarliestValidNs) {
      return rejection{reject_reason::timestamp_out_of_range,
                       fmt::format("{} is before 2000-01-01T00:00:00Z", field)};
    }
    if (ns > latest) {
      return rejection{
          reject_reason::timestamp_out_of_range,
          fmt::format("{} is {} s in the future; at most {} s of clock skew is allowed", field,
                      (ns - now_ns) / kNanosPerSecond, limits.max_clock_skew_ns / kNanosPerSecond)};
    }
    return std::nullopt;
  };
  if (auto r = out_of_range("window_start", w.window_start_ns)) return r;
  if (auto r = out_of_range("window_end", w.window_end_ns)) return r;
  if (w.sampled_at_ns != 0) {
    if (w.sampled_at_ns == kNoTimestamp) {
      return rejection{reject_reason::timestamp_out_of_range, "timestamp is not representable"};
    }
    if (auto r = out_of_range("timestamp", w.sampled_at_ns)) return r;
  }
  if (w.window_start_ns >= w.window_end_ns) {
    return rejection{reject_reason::invalid_window, "window_start must be before window_end"};
  }
  // Past the retention cutoff a window's dedup entry may be gone, so a re-send
  // could not be recognised: refuse it rather than risk counting it twice.
  if (limits.raw_retention_ns > 0 && w.window_start_ns < now_ns - limits.raw_retention_ns) {
    return rejection{reject_reason::timestamp_out_of_range,
                     fmt::format("window_start is older than the raw-window retention of {} days; "
                                 "such windows can no longer be checked for duplicates",
                                 limits.raw_retention_ns / kNanosPerDay)};
  }
  const int64_t length = w.duration_ns();
  if (length > limits.max_window_ns) {
    return rejection{reject_reason::invalid_window,
                     fmt::format("window is {} s long; at most {} s is allowed",
                                 length / kNanosPerSecond, limits.max_window_ns / kNanosPerSecond)};
  }

  const auto max_cpu = static_cast<unsigned __int128>(length) * limits.max_vcpus;
  if (w.cpu_time_nanos > max_cpu) {
    return implausible(fmt::format("cpu_time_nanos {} exceeds window length x {} vCPUs",
                                   w.cpu_time_nanos, limits.max_vcpus));
  }
  if (!std::isfinite(w.cpu_utilization_pct) || w.cpu_utilization_pct < 0 ||
      w.cpu_utilization_pct > 100.0 * limits.max_vcpus) {
    return implausible("cpu_utilization_pct must be a finite percentage");
  }
  if (!std::isfinite(w.cpu_cores_used) || w.cpu_cores_used < 0 ||
      w.cpu_cores_used > limits.max_vcpus) {
    return implausible("cpu_cores_used must be finite and at most the vCPU limit");
  }
  if (w.memory_bytes_used > limits.max_memory_bytes ||
      w.memory_bytes_peak > limits.max_memory_bytes) {
    return implausible(
        fmt::format("memory exceeds the limit of {} bytes", limits.max_memory_bytes));
  }
  if (w.memory_bytes_peak != 0 && w.memory_bytes_peak < w.memory_bytes_used) {
    return implausible("memory_bytes_peak is below memory_bytes_used");
  }
  // The integral cannot exceed the highest gauge held for the whole window.
  const uint64_t ceiling = w.memory_bytes_peak != 0 ? w.memory_bytes_peak : limits.max_memory_bytes;
  if (w.memory_bytes_seconds > max_over_window(ceiling, length)) {
    return implausible("memory_bytes_seconds exceeds peak memory held for the whole window");
  }
  const auto max_io_bytes = max_over_window(limits.max_io_bytes_per_second, length);
  const auto max_io_ops = max_over_window(limits.max_io_ops_per_second, length);
  if (w.disk_read_bytes > max_io_bytes || w.disk_write_bytes > max_io_bytes ||
      w.network_rx_bytes > max_io_bytes || w.network_tx_bytes > max_io_bytes) {
    return implausible(fmt::format("disk or network bytes exceed {} bytes/s over the window",
                                   limits.max_io_bytes_per_second));
  }
  if (w.disk_read_ops > max_io_ops || w.disk_write_ops > max_io_ops) {
    return implausible(fmt::format("disk operations exceed {} ops/s over the window",
                                   limits.max_io_ops_per_second));
  }
  return std::nullopt;
}

}  // namespace billing::model
