// UTC calendar buckets on unix nanoseconds: hours, days, months.
#pragma once

#include <cstdint>
#include <string>

namespace billing::model {

enum class granularity : uint8_t { hour = 1, day = 2, month = 3 };

inline constexpr int64_t kNanosPerSecond = 1'000'000'000;
inline constexpr int64_t kNanosPerHour = 3600 * kNanosPerSecond;
inline constexpr int64_t kNanosPerDay = 24 * kNanosPerHour;

// Start of the bucket containing `unix_ns` (floor, also before 1970).
int64_t bucket_start(granularity g, int64_t unix_ns);
// Start of the bucket after the one starting at `start`.
int64_t next_bucket_start(granularity g, int64_t start);
bool is_aligned(granularity g, int64_t unix_ns);

// The system clock as unix nanoseconds.
int64_t unix_now_ns();

// `unix_ns` as an RFC 3339 UTC time with the fraction trimmed of trailing
// zeros (Go's RFC3339Nano, what metald logs), e.g. "2026-11-24T10:00:00.1Z",
// so that error messages name instants people can read.
std::string format_rfc3339(int64_t unix_ns);

}  // namespace billing::model
