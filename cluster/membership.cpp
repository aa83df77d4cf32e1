#include "cluster/membership.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <set>

namespace billing::cluster {

uint64_t rendezvous_weight(std::string_view node_id, std::string_view customer_id) {
  std::string input;
  input.reserve(8 + node_id.size() + customer_id.size());
  const uint64_t length = node_id.size();
  for (int shift = 56; shift >= 0; shift -= 8) input.push_back(static_cast<char>(length >> shift));
  input.append(node_id).append(customer_id);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_length = 0;
  // SHA-256 cannot fail on in-memory input; a zero weight would still be a valid, fixed choice.
  EVP_Digest(input.data(), input.size(), digest.data(), &digest_length, EVP_sha256(), nullptr);
  uint64_t weight = 0;
  for (size_t i = 0; i < 8; ++i) weight = (weight << 8) | digest[i];
  return weight;
}

namespace {

status check_members(std::vector<member>& members) {
  if (members.empty()) return status{status_code::invalid_argument, "the cluster has no members"};
  std::set<std::string> seen;
  for (const auto& candidate : members) {
    if (candidate.node_id.empty()) {
      return status{status_code::invalid_argument, "a cluster member has an empty node id"};
    }
    if (!seen.insert(candidate.node_id).second) {
      return status{
          status_code::invalid_argument,
          fmt::format("node id \"{}\" appears twice in the member list", candidate.node_id)};
    }
  }
  std::sort(members.begin(), members.end(),
            [](const member& a, const member& b) { return a.node_id < b.node_id; });
  return status::ok_status();
}

}  // namespace

result<membership> membership::make(std::vector<member> members, std::string self_id) {
  if (status checked = check_members(members); !checked.ok()) return checked;
  const auto self = std::find_if(members.begin(), members.end(),
                                 [&](const member& m) { return m.node_id == self_id; });
  if (self == members.end()) {
    return status{status_code::invalid_argument,
                  fmt::format("this node's id \"{}\" is not in the member list", self_id)};
  }
  member me = *self;
  return membership(std::move(members), std::move(me));
}

result<membership> membership::leaving(member self, std::vector<member> others) {
  std::erase_if(others, [&](const member& m) { return m.node_id == self.node_id; });
  if (status checked = check_members(others); !checked.ok()) return checked;
  return membership(std::move(others), std::move(self));
}

result<std::vector<member>> membership::parse_members(std::string_view text) {
  std::vector<member> members;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view entry = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (comma != std::string_view::npos && text.empty()) {
      return status{status_code::invalid_argument, "the member list ends with a comma"};
    }
    const size_t at = entry.find('@');
    const size_t colon = entry.rfind(':');
    const auto invalid = [&](std::string_view why) {
      return status{status_code::invalid_argument,
                    fmt::format("cluster member \"{}\": {}; expected id@host:port", entry, why)};
    };
    if (at == std::string_view::npos || at == 0) return invalid("no node id");
    if (colon == std::string_view::npos || colon < at + 2) return invalid("no host");
    const std::string_view port_text = entry.substr(colon + 1);
    unsigned port = 0;
    const auto parsed =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (parsed.ec != std::errc{} || parsed.ptr != port_text.data() + port_text.size() ||
        port == 0 || port > 65535) {
      return invalid("the port is not a number from 1 to 65535");
    }
    members.push_back(member{std::string(entry.substr(0, at)),
                             std::string(entry.substr(at + 1, colon - at - 1)),
                             static_cast<uint16_t>(port)});
  }
  if (members.empty()) return status{status_code::invalid_argument, "the member list is empty"};
  return members;
}

const member* membership::find(std::string_view node_id) const {
  const auto found =
      std::lower_bound(members_.begin(), members_.end(), node_id,
                       [](const member& m, std::string_view id) { return m.node_id < id; });
  return found != members_.end() && found->node_id == node_id ? &*found : nullptr;
}

shard_fence membership::fence_of(std::string_view customer_id) const {
  if (shards_.empty()) return {};
  const uint32_t shard = shard_of(customer_id, static_cast<uint32_t>(shards_.size()));
  return {shard, shards_[shard].epoch};
}

const member& membership::owner_of(std::string_view customer_id) const {
  if (!shards_.empty()) {
    const uint32_t shard = shard_of(customer_id, static_cast<uint32_t>(shards_.size()));
    if (const member* leader = find(shards_[shard].leader())) return *leader;
    // The leader left: the reconcile pass will pick this one (or a later
    // bounded move, whose hand-over then moves the customer again).
    if (const member* next = find(desired_replicas(shard, members_, 1).front())) return *next;
  }
  size_t best = 0;
  uint64_t best_weight = 0;
  for (size_t i = 0; i < members_.size(); ++i) {
    const uint64_t weight = rendezvous_weight(members_[i].node_id, customer_id);
    // Ties (astronomically rare) go to the smaller node id: members_ is sorted.
    if (i == 0 || weight > best_weight) {
      best = i;
      best_weight = weight;
    }
  }
  return members_[best];
}

bool membership::is_local(std::string_view customer_id) const {
  return owner_of(customer_id).node_id == self().node_id;
}

}  // namespace billing::cluster
