// Backpressure at the door: a token-bucket rate limit per source and a bound
// on calls in flight. Overload is answered at once (resource_exhausted with a
// retry hint) instead of queueing without bound. Thread-safe; pure logic with
// the clock passed in, so the unit tests need no sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace billing::security {

// Per source: a bucket of `burst` requests refilled at `per_second` requests
// per second. Integer arithmetic in micro-requests: no floating point.
class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  // per_second == 0 disables the limit; burst 0 means burst = per_second.
  rate_limiter(uint32_t per_second, uint32_t burst);

  // nullopt when the request may proceed (one request taken from the bucket),
  // otherwise how long until the bucket holds one again (at least 1 ms).
  std::optional<std::chrono::milliseconds> admit(const std::string& source, clock::time_point now);

  bool enabled() const { return per_second_ != 0; }

 private:
  struct bucket {
    int64_t micro_tokens;
    clock::time_point refilled_at;
  };
  void refill(bucket& b, clock::time_point now) const;
  void forget_full_buckets(clock::time_point now);

  const int64_t per_second_;
  const int64_t capacity_micro_;
  std::mutex mutex_;
  std::map<std::string, bucket> buckets_;  // guarded by mutex_
};

// At most `limit` tickets exist at a time; a ticket is returned when its
// holder (a shared_ptr, usually captured by the call's completion) goes away.
class inflight_gate {
 public:
  explicit inflight_gate(uint32_t limit) : limit_(limit) {}

  class ticket {
   public:
    explicit ticket(std::atomic<uint32_t>& count) : count_(&count) {}
    ~ticket() { count_->fetch_sub(1); }
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;

   private:
    std::atomic<uint32_t>* count_;
  };

  // A ticket, or null when `limit` are out (limit 0: unbounded). The gate
  // must outlive its tickets (own both through shared_ptr).
  std::shared_ptr<ticket> try_enter();
  uint32_t in_flight() const { return count_.load(); }

 private:
  const uint32_t limit_;
  std::atomic<uint32_t> count_{0};
};

}  // namespace billing::security
