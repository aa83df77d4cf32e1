#include "storage/write_pause.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace billing::storage {

void write_pause::pause(const status& error, clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (!paused_) {
    const bool soon_again = interval_.count() > 0 && now - resumed_at_ < policy_.longest_interval;
    interval_ =
        soon_again ? std::min(interval_ * 2, policy_.longest_interval) : policy_.first_interval;
  }
  paused_ = true;
  cause_ = error;
  next_attempt_ = now + interval_;
}

void write_pause::resume(clock::time_point now) {
  std::lock_guard lock(mutex_);
  resumed_at_ = now;
  paused_ = false;
  cause_ = status::ok_status();
}

bool write_pause::paused() const {
  std::lock_guard lock(mutex_);
  return paused_;
}

bool write_pause::due(clock::time_point now, uint64_t free_bytes) const {
  std::lock_guard lock(mutex_);
  if (!paused_ || now < next_attempt_) return false;
  return !is_disk_full(cause_) || free_bytes >= policy_.min_free_bytes;
}

void write_pause::attempt_failed(const status& error, clock::time_point now) {
  std::lock_guard lock(mutex_);
  paused_ = true;
  cause_ = error;
  interval_ = std::min(interval_ * 2, policy_.longest_interval);
  next_attempt_ = now + interval_;
}

status write_pause::refusal() const {
  std::lock_guard lock(mutex_);
  if (!paused_) return status::ok_status();
  if (is_disk_full(cause_)) {
    return {status_code::resource_exhausted,
            fmt::format("the ledger's data volume is full; writes are paused and resume by "
                        "themselves once space is freed (reads are served from what is "
                        "stored): {}",
                        cause_.message())};
  }
  return {status_code::unavailable,
          fmt::format("the ledger refuses writes after a storage error and retries on its own: "
                      "{}",
                      cause_.message())};
}

write_health write_pause::health() const {
  std::lock_guard lock(mutex_);
  if (!paused_) return {};
  return {false, is_disk_full(cause_), cause_.message()};
}

}  // namespace billing::storage
