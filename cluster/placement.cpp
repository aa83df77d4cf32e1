#include "cluster/placement.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>

#include "cluster/membership.hpp"

namespace billing::cluster {

const std::string& shard_assignment::leader() const {
  static const std::string none;  // immutable: not mutable global state
  return replicas.empty() ? none : replicas.front();
}

uint32_t shard_of(std::string_view customer_id, uint32_t shard_count) {
  std::string input = "shard";
  input.append(customer_id);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_length = 0;
  EVP_Digest(input.data(), input.size(), digest.data(), &digest_length, EVP_sha256(), nullptr);
  uint64_t hash = 0;
  for (size_t i = 0; i < 8; ++i) hash = (hash << 8) | digest[i];
  return shard_count == 0 ? 0 : static_cast<uint32_t>(hash % shard_count);
}

std::vector<std::string> desired_replicas(uint32_t shard, const std::vector<member>& members,
                                          uint32_t replicas) {
  const std::string key = fmt::format("shard/{}", shard);
  std::vector<std::pair<uint64_t, const std::string*>> weighted;
  weighted.reserve(members.size());
  for (const auto& m : members)
    weighted.emplace_back(rendezvous_weight(m.node_id, key), &m.node_id);
  // Highest weight first; ties (astronomically rare) to the smaller id.
  std::sort(weighted.begin(), weighted.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : *a.second < *b.second;
  });
  std::vector<std::string> chosen;
  for (size_t i = 0; i < weighted.size() && i < replicas; ++i)
    chosen.push_back(*weighted[i].second);
  return chosen;
}

namespace {

// With fewer members than replicas, the replicas that are gone stay in the
// set (after the live ones, so a live node leads): a majority stays a
// majority of R, and the one or two survivors of a set never form a
// "majority" of their own that lacks what the others acknowledged.
void keep_absent_replicas(const std::vector<std::string>& previous, uint32_t replicas,
                          std::vector<std::string>& desired) {
  if (replicas <= 1) return;  // one copy: its hinted handoff covers an absent owner
  for (const auto& node : previous) {
    if (desired.size() >= replicas) return;
    if (std::find(desired.begin(), desired.end(), node) == desired.end()) desired.push_back(node);
  }
}

}  // namespace

std::vector<placement_change> plan_placement(const std::vector<stored_shard>& current,
                                             const std::vector<member>& members, uint32_t replicas,
                                             uint32_t max_moves) {
  std::vector<placement_change> changes;
  if (members.empty()) return changes;
  const auto is_member = [&](const std::string& id) {
    return std::any_of(members.begin(), members.end(),
                       [&](const member& m) { return m.node_id == id; });
  };
  uint32_t moves = 0;
  for (uint32_t shard = 0; shard < current.size(); ++shard) {
    const auto& stored = current[shard];
    auto desired = desired_replicas(shard, members, replicas);
    keep_absent_replicas(stored.assignment.replicas, replicas, desired);
    if (stored.assignment.replicas == desired) continue;
    const bool orphaned = stored.mod_revision == 0 || stored.assignment.replicas.empty() ||
                          !is_member(stored.assignment.leader());
    if (!orphaned) {
      if (moves >= max_moves) continue;
      ++moves;
    }
    placement_change change;
    change.shard = shard;
    change.expected_mod_revision = stored.mod_revision;
    const bool new_leader = stored.assignment.leader() != desired.front();
    change.next.epoch = stored.assignment.epoch + (new_leader || stored.mod_revision == 0 ? 1 : 0);
    change.next.replicas = std::move(desired);
    changes.push_back(std::move(change));
  }
  return changes;
}

}  // namespace billing::cluster
