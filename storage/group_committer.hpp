// Group commit: many threads hand in write_sets without blocking; one thread
// writes all that are pending at a time as a single atomic, synced write and
// then completes them in the order they were handed in. See README.md for why
// RocksDB's own write grouping does not serve non-blocking callers.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "model/status.hpp"
#include "storage/ledger_store.hpp"

namespace billing::storage {

struct pending_commit {
  write_set writes;
  std::function<void(status)> on_done;
  status outcome;  // set by the group writer
};

class group_committer {
 public:
  // Runs on the committer thread with every commit pending at that moment
  // (at least one), in call order; must set each `outcome`.
  using group_writer = std::function<void(std::span<pending_commit>)>;

  // `on_idle`, if set, runs on the committer thread whenever `idle_interval`
  // passed without a commit: the store retries a paused write path there, so
  // it resumes without waiting for a client to write.
  explicit group_committer(group_writer write_group, std::function<void()> on_idle = {},
                           std::chrono::milliseconds idle_interval = std::chrono::seconds{1});
  // Completes every commit handed in before (and any handed in by on_done
  // callbacks while draining), then stops the thread.
  ~group_committer();
  group_committer(const group_committer&) = delete;
  group_committer& operator=(const group_committer&) = delete;

  // Never blocks on I/O: only appends to the queue.
  void submit(write_set writes, std::function<void(status)> on_done);

  uint64_t commits_requested() const { return commits_requested_.load(); }

 private:
  void run();

  group_writer write_group_;
  std::function<void()> on_idle_;
  std::chrono::milliseconds idle_interval_;
  std::atomic<uint64_t> commits_requested_{0};
  std::mutex mutex_;
  std::condition_variable work_arrived_;
  std::vector<pending_commit> queue_;  // guarded by mutex_
  bool stopping_ = false;              // guarded by mutex_
  // Declared last: it starts after, and is joined before, everything it uses.
  std::jthread thread_;
};

}  // namespace billing::storage
