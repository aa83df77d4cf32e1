#include "security/admission.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace billing::security;
using namespace std::chrono_literals;

TEST_CASE("a source may send its burst at once, then one request per refill interval") {
  rate_limiter limiter(10, 3);  // 10/s: one request per 100 ms, 3 at once
  const auto t0 = rate_limiter::clock::now();
  CHECK_FALSE(limiter.admit("metald-a", t0).has_value());
  CHECK_FALSE(limiter.admit("metald-a", t0).has_value());
  CHECK_FALSE(limiter.admit("metald-a", t0).has_value());
  const auto wait = limiter.admit("metald-a", t0);
  REQUIRE(wait.has_value());
  CHECK(*wait == 100ms);
  // Refused requests take nothing: 40 ms later the wait is 60 ms.
  const auto later = limiter.admit("metald-a", t0 + 40ms);
  REQUIRE(later.has_value());
  CHECK(*later == 60ms);
  CHECK_FALSE(limiter.admit("metald-a", t0 + 100ms).has_value());
  CHECK(limiter.admit("metald-a", t0 + 100ms).has_value());
  // Other sources have their own buckets.
  CHECK_FALSE(limiter.admit("metald-b", t0).has_value());
}

TEST_CASE("a bucket refills up to its burst and no further") {
  rate_limiter limiter(1000, 2);
  const auto t0 = rate_limiter::clock::now();
  CHECK_FALSE(limiter.admit("s", t0).has_value());
  CHECK_FALSE(limiter.admit("s", t0).has_value());
  const auto hour_later = t0 + 1h;
  CHECK_FALSE(limiter.admit("s", hour_later).has_value());
  CHECK_FALSE(limiter.admit("s", hour_later).has_value());
  CHECK(limiter.admit("s", hour_later).has_value());
}

TEST_CASE("rate 0 disables the limit; burst 0 means one second's worth") {
  rate_limiter off(0, 0);
  CHECK_FALSE(off.enabled());
  const auto t0 = rate_limiter::clock::now();
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(off.admit("s", t0).has_value());
  rate_limiter per_second(5, 0);
  for (int i = 0; i < 5; ++i) CHECK_FALSE(per_second.admit("s", t0).has_value());
  CHECK(per_second.admit("s", t0).has_value());
}

TEST_CASE("many distinct sources do not grow the limiter without bound") {
  rate_limiter limiter(1, 1);
  const auto t0 = rate_limiter::clock::now();
  for (int i = 0; i < 10'000; ++i) (void)limiter.admit("peer-" + std::to_string(i), t0 + 2s * i);
  // Still limits a source that is busy right now.
  const auto now = t0 + 2s * 10'000;
  CHECK_FALSE(limiter.admit("busy", now).has_value());
  CHECK(limiter.admit("busy", now).has_value());
}

TEST_CASE("the in-flight gate hands out at most `limit` tickets and takes them back") {
  inflight_gate gate(2);
  auto first = gate.try_enter();
  auto second = gate.try_enter();
  REQUIRE(first);
  REQUIRE(second);
  CHECK(gate.try_enter() == nullptr);
  CHECK(gate.in_flight() == 2);
  first.reset();
  CHECK(gate.in_flight() == 1);
  CHECK(gate.try_enter() != nullptr);  // dropped at once again
  CHECK(gate.in_flight() == 1);
  inflight_gate unbounded(0);
  std::vector<std::shared_ptr<inflight_gate::ticket>> held;
  for (int i = 0; i < 100; ++i) held.push_back(unbounded.try_enter());
  CHECK(held.back() != nullptr);
}
