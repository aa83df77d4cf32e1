#include "security/admission.hpp"

#include <algorithm>

namespace billing::security {
namespace {

constexpr int64_t kMicro = 1'000'000;
// Sources seen are remembered in a map; beyond this many, full (idle)
// buckets are dropped, so a stream of new peer addresses cannot grow it
// without bound. A full bucket is the same as a forgotten one.
constexpr size_t kMaxRememberedSources = 4096;

}  // namespace

rate_limiter::rate_limiter(uint32_t per_second, uint32_t burst)
    : per_second_(per_second), capacity_micro_(int64_t{burst == 0 ? per_second : burst} * kMicro) {}

void rate_limiter::refill(bucket& b, clock::time_point now) const {
  if (now <= b.refilled_at) return;
  const int64_t elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(now - b.refilled_at).count();
  // micro-requests gained = elapsed_us * per_second (1 request = 1e6 micro).
  const int64_t gained = elapsed_us > capacity_micro_ ? capacity_micro_ : elapsed_us * per_second_;
  b.micro_tokens = std::min(capacity_micro_, b.micro_tokens + gained);
  b.refilled_at = now;
}

void rate_limiter::forget_full_buckets(clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    refill(it->second, now);
    it = it->second.micro_tokens >= capacity_micro_ ? buckets_.erase(it) : std::next(it);
  }
}

std::optional<std::chrono::milliseconds> rate_limiter::admit(const std::string& source,
                                                             clock::time_point now) {
  if (per_second_ == 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  if (buckets_.size() >= kMaxRememberedSources && !buckets_.contains(source)) {
    forget_full_buckets(now);
  }
  auto [it, inserted] = buckets_.try_emplace(source, bucket{capacity_micro_, now});
  bucket& b = it->second;
  refill(b, now);
  if (b.micro_tokens >= kMicro) {
    b.micro_tokens -= kMicro;
    return std::nullopt;
  }
  // Time until one whole request is available, rounded up to a millisecond.
  const int64_t missing = kMicro - b.micro_tokens;
  const int64_t wait_us = (missing + per_second_ - 1) / per_second_;
  return std::chrono::milliseconds{std::max<int64_t>(1, (wait_us + 999) / 1000)};
}

std::shared_ptr<inflight_gate::ticket> inflight_gate::try_enter() {
  const uint32_t before = count_.fetch_add(1);
  if (limit_ != 0 && before >= limit_) {
    count_.fetch_sub(1);
    return nullptr;
  }
  return std::make_shared<ticket>(count_);
}

}  // namespace billing::security
