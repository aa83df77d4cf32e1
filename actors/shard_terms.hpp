// Which shards this node serves as their leader, and at which epoch (issue
// 16, replicated ledgers). The replicator (cluster/replication) sets a
// shard's epoch once this node leads it and holds every write a majority
// acknowledged, and clears it when the node stops leading; customer ledgers
// commit as the shard's leader at that epoch, and the directory answers
// reads only for shards served here. A table of atomics rather than
// messages: every commit and query reads it, and only the replicator writes.
#pragma once

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "model/status.hpp"

namespace billing::actors {

class shard_terms {
 public:
  static constexpr uint32_t max_shards = 65536;
  using shard_function = uint32_t (*)(std::string_view customer_id, uint32_t shard_count);

  explicit shard_terms(shard_function shard_of) : shard_of_(shard_of) {
    for (auto& epoch : epochs_) epoch.store(0, std::memory_order_relaxed);
  }

  // The cluster's shard count, once known (0 before: nothing is served).
  void set_shard_count(uint32_t count) { shard_count_.store(count < max_shards ? count : 0); }
  uint32_t shard_count() const { return shard_count_.load(); }

  uint32_t shard_of(std::string_view customer_id) const {
    return shard_of_(customer_id, shard_count());
  }
  // The epoch this node serves `shard` at; 0 while it does not, or while
  // its etcd lease may have expired (others may lead its shards by now).
  uint64_t served_epoch(uint32_t shard) const {
    if (shard >= max_shards || !lease_valid()) return 0;
    return epochs_[shard].load(std::memory_order_acquire);
  }
  // The epoch the replicator set, whatever the lease.
  uint64_t assigned_epoch(uint32_t shard) const {
    return shard < max_shards ? epochs_[shard].load(std::memory_order_acquire) : 0;
  }
  // This node's etcd lease is surely in force until `until` (the coordinator
  // renews it; a paused or cut-off node stops serving when it runs out).
  void set_lease_until(std::chrono::steady_clock::time_point until) {
    lease_until_.store(until.time_since_epoch().count(), std::memory_order_release);
  }
  bool lease_valid() const {
    return std::chrono::steady_clock::now().time_since_epoch().count() <
           lease_until_.load(std::memory_order_acquire);
  }
  void serve(uint32_t shard, uint64_t epoch) {
    if (shard < max_shards) epochs_[shard].store(epoch, std::memory_order_release);
  }

  struct served {
    uint32_t shard = 0;
    uint64_t epoch = 0;
  };
  // The shard of `customer_id` and the epoch it is served at here, or
  // unavailable (with the reason) when this node does not serve it now.
  result<served> serving(std::string_view customer_id) const {
    if (shard_count() == 0) {
      return status{status_code::unavailable, "the cluster's shard count is not known yet; retry"};
    }
    const uint32_t shard = shard_of(customer_id);
    const uint64_t epoch = served_epoch(shard);
    if (epoch == 0 && !lease_valid()) {
      return status{status_code::unavailable,
                    "this node's cluster lease is not confirmed (etcd unreachable, or the node "
                    "was paused); it serves no shard until it is; retry"};
    }
    if (epoch == 0) {
      return status{status_code::unavailable,
                    fmt::format("shard {} (customer '{}') is not served by this node now: its "
                                "leader is elsewhere or still recovering; retry",
                                shard, customer_id)};
    }
    return served{shard, epoch};
  }

 private:
  shard_function shard_of_;
  std::atomic<uint32_t> shard_count_{0};
  std::atomic<std::chrono::steady_clock::rep> lease_until_{0};
  std::array<std::atomic<uint64_t>, max_shards> epochs_;
};

}  // namespace billing::actors
