#include "storage/group_committer.hpp"

#include <utility>

namespace billing::storage {

group_committer::group_committer(group_writer write_group, std::function<void()> on_idle,
                                 std::chrono::milliseconds idle_interval)
    : write_group_(std::move(write_group)),
      on_idle_(std::move(on_idle)),
      idle_interval_(idle_interval),
      thread_([this] { run(); }) {}

group_committer::~group_committer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_arrived_.notify_one();
  thread_.join();
}

void group_committer::submit(write_set writes, std::function<void(status)> on_done) {
  commits_requested_.fetch_add(1);
  {
    std::lock_guard lock(mutex_);
    queue_.push_back({std::move(writes), std::move(on_done), status::ok_status()});
  }
  work_arrived_.notify_one();
}

void group_committer::run() {
  std::vector<pending_commit> group;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      const auto has_work = [this] { return stopping_ || !queue_.empty(); };
      if (!on_idle_) {
        work_arrived_.wait(lock, has_work);
      } else if (!work_arrived_.wait_for(lock, idle_interval_, has_work)) {
        lock.unlock();
        on_idle_();
        continue;
      }
      // Stop only once drained: every on_done must run exactly once.
      if (queue_.empty()) return;
      group.swap(queue_);
    }
    write_group_(group);
    for (auto& commit : group) {
      if (commit.on_done) commit.on_done(std::move(commit.outcome));
    }
    group.clear();
  }
}

}  // namespace billing::storage
