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

#include "model/status.hpp"

namespace billing::cluster {

struct member {
  std::string node_id;  // stable across restarts, e.g. the StatefulSet pod name
  std::string host;     // where its CAF middleman listens
  uint16_t port = 0;

  friend bool operator==(const member&, const member&) = default;
};

class membership {
 public:
  // invalid_argument for an empty list, an empty or duplicate node id, or
  // `self_id` not among the members.
  static result<membership> make(std::vector<member> members, std::string self_id);

  // Parses "id@host:port,id@host:port" (the --cluster-members option).
  static result<std::vector<member>> parse_members(std::string_view text);

  const member& owner_of(std::string_view customer_id) const;
  bool is_local(std::string_view customer_id) const;
  const member& self() const { return members_[self_index_]; }
  const std::vector<member>& members() const { return members_; }

 private:
  membership(std::vector<member> members, size_t self_index)
      : members_(std::move(members)), self_index_(self_index) {}

  std::vector<member> members_;  // sorted by node id
  size_t self_index_;
};

// The rendezvous weight of `customer_id` on `node_id`: the first 8 bytes of
// SHA-256(len(node_id) | node_id | customer_id), big-endian. The length
// prefix keeps ("ab","c") and ("a","bc") apart.
uint64_t rendezvous_weight(std::string_view node_id, std::string_view customer_id);

}  // namespace billing::cluster
