// Cluster membership and customer ownership. A customer is owned by exactly
// one member, chosen by rendezvous (highest-random-weight) hashing: every
// member gets a weight SHA-256(member id, customer id) and the highest wins.
// Every node computes the same owner from the same member list, with no
// coordination, and when a member joins or leaves only the customers it wins
// or owned move (about 1/N of them), never customers between the others.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/placement.hpp"
#include "model/status.hpp"

namespace billing::cluster {

struct member {
  std::string node_id;  // stable across restarts, e.g. the StatefulSet pod name
  std::string host;     // where its CAF middleman listens
  uint16_t port = 0;

  friend bool operator==(const member&, const member&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member& x) {
  return f(x.node_id, x.host, x.port);
}

class membership {
 public:
  // invalid_argument for an empty list, an empty or duplicate node id, or
  // `self_id` not among the members.
  static result<membership> make(std::vector<member> members, std::string self_id);
  // A node leaving the cluster (etcd mode, draining before it exits): owns
  // nothing, routes everything to `others` (not empty).
  static result<membership> leaving(member self, std::vector<member> others);

  // Parses "id@host:port,id@host:port" (the --cluster-members option).
  static result<std::vector<member>> parse_members(std::string_view text);

  // The owner: with a shard placement (etcd mode) the leader of the
  // customer's shard, or while that is not a member, the member that the
  // placement will choose; without one, the rendezvous winner.
  const member& owner_of(std::string_view customer_id) const;
  // etcd mode: the placement (one entry per shard); empty: rendezvous.
  void set_shards(std::vector<shard_assignment> shards) { shards_ = std::move(shards); }
  const std::vector<shard_assignment>& shards() const { return shards_; }
  // The fence of the customer's shard as this node sees it.
  shard_fence fence_of(std::string_view customer_id) const;
  bool is_local(std::string_view customer_id) const;
  const member& self() const { return self_; }
  const std::vector<member>& members() const { return members_; }

 private:
  membership(std::vector<member> members, member self)
      : members_(std::move(members)), self_(std::move(self)) {}

  const member* find(std::string_view node_id) const;

  std::vector<member> members_;  // sorted by node id
  member self_;
  std::vector<shard_assignment> shards_;
};

// The rendezvous weight of `customer_id` on `node_id`: the first 8 bytes of
// SHA-256(len(node_id) | node_id | customer_id), big-endian. The length
// prefix keeps ("ab","c") and ("a","bc") apart.
uint64_t rendezvous_weight(std::string_view node_id, std::string_view customer_id);

}  // namespace billing::cluster
