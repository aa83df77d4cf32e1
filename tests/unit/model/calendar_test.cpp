#include "model/calendar.hpp"

#include <doctest/doctest.h>

using namespace billing::model;

TEST_CASE("instants are named as RFC 3339 UTC times with a trimmed fraction") {
  CHECK(format_rfc3339(0) == "1970-01-01T00:00:00Z");
  // 2026-11-24T10:00:00Z
  const int64_t at = int64_t{1'795'514'400} * kNanosPerSecond;
  CHECK(format_rfc3339(at) == "2026-11-24T10:00:00Z");
  CHECK(format_rfc3339(at + 100'000'000) == "2026-11-24T10:00:00.1Z");
  CHECK(format_rfc3339(at + 70 * kNanosPerSecond + 50'000'000) == "2026-11-24T10:01:10.05Z");
  CHECK(format_rfc3339(at + 1) == "2026-11-24T10:00:00.000000001Z");
  CHECK(format_rfc3339(at - kNanosPerDay * 365) == "2025-11-24T10:00:00Z");
  // Before 1970 too (floor, not truncation toward zero).
  CHECK(format_rfc3339(-1) == "1969-12-31T23:59:59.999999999Z");
}
