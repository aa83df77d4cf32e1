// Why the ledger refuses writes after a storage error, and when it tries to
// take them again. A full data volume pauses writes (the store then serves
// reads from a read-only open) until enough space is free; any other storage
// error is retried with a growing back-off. See README.md, "Full disk".
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "model/status.hpp"

namespace billing::storage {

// What readiness and /metrics show; any thread.
struct write_health {
  bool writable = true;
  bool disk_full = false;  // paused because the data volume is full
  std::string cause;       // empty while writable
};

struct resume_policy {
  // A disk-full pause is not retried before this much is free again: a
  // reopen flushes the replayed WAL into SSTs (up to a memtable, 64 MiB) and
  // the new WAL preallocates 1.1 memtables.
  uint64_t min_free_bytes = uint64_t{128} << 20;
  // Between attempts to resume; doubles after each failed one up to `longest`,
  // and also when writes fail again soon after resuming (a compaction that
  // needs more room than was freed), so a store never flaps every second.
  std::chrono::milliseconds first_interval{1'000};
  std::chrono::milliseconds longest_interval{30'000};
};

// Used by the committer thread; health() from any thread.
class write_pause {
 public:
  using clock = std::chrono::steady_clock;

  explicit write_pause(resume_policy policy) : policy_(policy) {}

  // Writes failed (or a background flush or compaction did) with `error`.
  void pause(const status& error, clock::time_point now);
  void resume(clock::time_point now);
  bool paused() const;
  // Whether to try reopening for writes now, with `free_bytes` free on the
  // data volume.
  bool due(clock::time_point now, uint64_t free_bytes) const;
  // A reopen for writes failed with `error`: wait longer before the next.
  void attempt_failed(const status& error, clock::time_point now);

  // What a commit gets while paused: resource_exhausted naming the full
  // disk, else unavailable naming the storage error.
  status refusal() const;
  write_health health() const;

 private:
  static bool is_disk_full(const status& error) {
    return error.code() == status_code::resource_exhausted;
  }

  const resume_policy policy_;
  mutable std::mutex mutex_;
  bool paused_ = false;  // guarded by mutex_, like the rest
  status cause_;
  clock::time_point next_attempt_{};
  clock::time_point resumed_at_{};
  std::chrono::milliseconds interval_{0};
};

}  // namespace billing::storage
