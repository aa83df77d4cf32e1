// Shard placement (issue 15, etcd mode). Customers hash to a fixed number of
// shards (fixed when the cluster is created); each shard has an ordered
// replica set of R nodes whose first is the shard's leader, the node that
// owns the shard's customers. The placement lives in etcd and changes only by
// compare-and-swap; every change of a shard's leader increases the shard's
// epoch, the fencing token that cross-node messages about the shard carry.
// This file is the pure part: which shard a customer is in, which replicas
// a shard should have, and which changes a reconcile pass makes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billing::cluster {

struct member;

struct shard_assignment {
  std::vector<std::string> replicas;  // node ids; replicas[0] leads
  uint64_t epoch = 0;                 // 0: no placement (yet)

  const std::string& leader() const;
  friend bool operator==(const shard_assignment&, const shard_assignment&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_assignment& x) {
  return f(x.replicas, x.epoch);
}

// What a cross-node message about a customer carries: its shard and the
// shard's epoch as the sender sees it (cluster/fence.hpp).
struct shard_fence {
  uint32_t shard = 0;
  uint64_t epoch = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_fence& x) {
  return f(x.shard, x.epoch);
}

// The shard of a customer: the first 8 bytes (big-endian) of
// SHA-256("shard" | customer_id), modulo shard_count.
uint32_t shard_of(std::string_view customer_id, uint32_t shard_count);

// The replicas shard `shard` should have among `members`: the `replicas`
// (at most members.size()) with the highest rendezvous weight of
// "shard/<shard>", best first. A member joining or leaving changes the
// replica sets of about R/N of the shards, and the others not at all.
std::vector<std::string> desired_replicas(uint32_t shard, const std::vector<member>& members,
                                          uint32_t replicas);

// A shard's record as read from etcd.
struct stored_shard {
  shard_assignment assignment;
  int64_t mod_revision = 0;  // 0: no record
};

struct placement_change {
  uint32_t shard = 0;
  shard_assignment next;
  int64_t expected_mod_revision = 0;
};

// The changes that bring `current` (one entry per shard) towards the desired
// placement of `members`: every shard with no record or whose leader is not
// a member (its customers have no owner: unbounded), and at most `max_moves`
// shards whose leader is alive but whose replica set differs (rebalancing,
// bounded so that a join moves data gradually). A change of the leader
// increases the epoch by one; a new shard starts at epoch 1.
std::vector<placement_change> plan_placement(const std::vector<stored_shard>& current,
                                             const std::vector<member>& members, uint32_t replicas,
                                             uint32_t max_moves);

}  // namespace billing::cluster
