// Per-window plausibility rules. A window failing any rule is rejected with
// a reason; nothing about it is stored except, for conflicts, the audit record.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/ingest.hpp"
#include "model/status.hpp"
#include "model/usage_window.hpp"

namespace billing::model {

struct validation_limits {
  // Longest id accepted (customer, region, vm, batch, instance), in bytes.
  uint32_t max_id_bytes = 128;
  // Longest window accepted.
  int64_t max_window_ns = int64_t{3600} * 1'000'000'000;
  // How far in the future window_end (and the sample timestamp) may lie.
  int64_t max_clock_skew_ns = int64_t{300} * 1'000'000'000;
  // CPU time cannot exceed window length times this many cores.
  uint32_t max_vcpus = 512;
  // Memory gauges cannot exceed this.
  uint64_t max_memory_bytes = uint64_t{64} << 40;  // 64 TiB
  // Disk and network bytes per second of window cannot exceed this.
  uint64_t max_io_bytes_per_second = uint64_t{400} * 1'000'000'000;  // 400 GB/s
  // Disk operations per second of window cannot exceed this.
  uint64_t max_io_ops_per_second = 100'000'000;
  // Windows starting more than this before now are refused (0: no limit):
  // raw windows and their dedup entries are dropped after this long.
  int64_t raw_retention_ns = 0;
};

// 2000-01-01T00:00:00Z: nothing older is a real usage window.
inline constexpr int64_t kEarliestValidNs = int64_t{946'684'800} * 1'000'000'000;

struct rejection {
  reject_reason reason;
  std::string message;
};

// Checks that an id is present, short enough and free of control characters.
// The same rule as a request-level check: invalid_argument naming the field,
// for ids outside a window (batch, instance, customer of a query).
status check_id(std::string_view field, std::string_view value, const validation_limits& limits);

std::optional<rejection> validate_id(std::string_view field, std::string_view value,
                                     const validation_limits& limits);

// Checks one window against the limits, with `now_ns` the server's clock.
// The region must already be resolved (batch region applied).
std::optional<rejection> validate_window(const usage_window& window,
                                         const validation_limits& limits, int64_t now_ns);

}  // namespace billing::model
