// Shard placement: stable shard hashing, replica sets by rendezvous over
// shard ids, and reconcile plans that move few shards, bound rebalancing and
// bump a shard's epoch exactly when its leader changes.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "cluster/membership.hpp"
#include "cluster/placement.hpp"

using namespace billing::cluster;

namespace {

std::vector<member> nodes(std::initializer_list<const char*> ids) {
  std::vector<member> out;
  uint16_t port = 4100;
  for (const char* id : ids) out.push_back({id, "127.0.0.1", ++port});
  return out;
}

// Applies a plan to `current` as etcd would (mod revisions advance).
void apply_plan(std::vector<stored_shard>& current, const std::vector<placement_change>& plan) {
  for (const auto& change : plan) {
    REQUIRE(current[change.shard].mod_revision == change.expected_mod_revision);
    current[change.shard] = {change.next, change.expected_mod_revision + 1000};
  }
}

}  // namespace

TEST_CASE("shard_of is stable and spreads customers") {
  CHECK(shard_of("cust-1", 256) == shard_of("cust-1", 256));
  CHECK(shard_of("cust-1", 256) < 256);
  std::map<uint32_t, int> used;
  for (int i = 0; i < 2000; ++i) used[shard_of("c" + std::to_string(i), 16)]++;
  CHECK(used.size() == 16);
  for (const auto& [shard, count] : used) CHECK(count > 60);  // 125 expected each
}

TEST_CASE("desired replicas: R distinct members, leader first, few changes when one joins") {
  const auto three = nodes({"n1", "n2", "n3"});
  const auto four = nodes({"n1", "n2", "n3", "n4"});
  auto replicas = desired_replicas(7, three, 2);
  REQUIRE(replicas.size() == 2);
  CHECK(replicas[0] != replicas[1]);
  CHECK(desired_replicas(7, three, 5).size() == 3);  // never more than the members
  int leaders_moved = 0;
  for (uint32_t shard = 0; shard < 256; ++shard) {
    const auto before = desired_replicas(shard, three, 1);
    const auto after = desired_replicas(shard, four, 1);
    if (before != after) {
      ++leaders_moved;
      CHECK(after[0] == "n4");  // only to the new node, never between the others
    }
  }
  CHECK(leaders_moved > 30);  // about 64 of 256
  CHECK(leaders_moved < 110);
}

TEST_CASE("plan: a new cluster places every shard at epoch 1") {
  std::vector<stored_shard> current(32);
  auto plan = plan_placement(current, nodes({"n1", "n2"}), 1, 4);
  REQUIRE(plan.size() == 32);  // unplaced shards are not bounded
  for (const auto& change : plan) {
    CHECK(change.next.epoch == 1);
    CHECK(change.expected_mod_revision == 0);
  }
  apply_plan(current, plan);
  CHECK(plan_placement(current, nodes({"n1", "n2"}), 1, 4).empty());
}

TEST_CASE("plan: a join rebalances at most max_moves shards a pass; epochs follow leaders") {
  std::vector<stored_shard> current(64);
  apply_plan(current, plan_placement(current, nodes({"n1", "n2", "n3"}), 2, 4));
  const auto before = current;
  const auto four = nodes({"n1", "n2", "n3", "n4"});
  size_t passes = 0;
  size_t changed = 0;
  for (;;) {
    auto plan = plan_placement(current, four, 2, 4);
    if (plan.empty()) break;
    CHECK(plan.size() <= 4);
    changed += plan.size();
    for (const auto& change : plan) {
      const auto& old = current[change.shard].assignment;
      CHECK(change.next.epoch == old.epoch + (old.leader() != change.next.leader() ? 1 : 0));
    }
    apply_plan(current, plan);
    REQUIRE(++passes < 64);
  }
  CHECK(changed > 0);
  CHECK(changed < 64);  // only shards whose replica set involves n4
  for (uint32_t shard = 0; shard < 64; ++shard) {
    if (current[shard].assignment == before[shard].assignment) continue;
    const auto& r = current[shard].assignment.replicas;
    CHECK(std::find(r.begin(), r.end(), "n4") != r.end());
  }
}

TEST_CASE("plan: shards of a node gone get a new leader at once, beyond max_moves") {
  std::vector<stored_shard> current(64);
  apply_plan(current, plan_placement(current, nodes({"n1", "n2", "n3"}), 1, 0));
  size_t led_by_n3 = 0;
  for (const auto& s : current) led_by_n3 += s.assignment.leader() == "n3" ? 1 : 0;
  REQUIRE(led_by_n3 > 1);
  auto plan = plan_placement(current, nodes({"n1", "n2"}), 1, 0);
  CHECK(plan.size() == led_by_n3);  // max_moves 0 does not hold orphans back
  for (const auto& change : plan) {
    CHECK(current[change.shard].assignment.leader() == "n3");
    CHECK(change.next.leader() != "n3");
    CHECK(change.next.epoch == 2);
  }
}

TEST_CASE("plan: replicated shards keep absent replicas in the set while members are too few") {
  std::vector<stored_shard> current(16);
  apply_plan(current, plan_placement(current, nodes({"n1", "n2", "n3"}), 3, 0));
  for (const auto& s : current) REQUIRE(s.assignment.replicas.size() == 3);

  // n3 is gone: its shards get a live leader, but the set still has three
  // replicas, so a majority is two of three, never one of two.
  apply_plan(current, plan_placement(current, nodes({"n1", "n2"}), 3, 0));
  for (const auto& s : current) {
    const auto& r = s.assignment.replicas;
    REQUIRE(r.size() == 3);
    CHECK(std::find(r.begin(), r.end(), "n3") != r.end());
    CHECK(s.assignment.leader() != "n3");
  }
  // n2 goes too: the one survivor leads sets in which it is no majority.
  apply_plan(current, plan_placement(current, nodes({"n1"}), 3, 0));
  for (const auto& s : current) {
    CHECK(s.assignment.leader() == "n1");
    CHECK(s.assignment.replicas.size() == 3);
  }
  CHECK(plan_placement(current, nodes({"n1"}), 3, 0).empty());  // settled

  // With enough members an absent replica is replaced by a live one.
  apply_plan(current, plan_placement(current, nodes({"n1", "n2", "n4"}), 3, 64));
  for (const auto& s : current) {
    const auto& r = s.assignment.replicas;
    CHECK(std::find(r.begin(), r.end(), "n3") == r.end());
  }
}

TEST_CASE("plan: one replica per shard drops an absent owner (hinted handoff covers it)") {
  std::vector<stored_shard> current(16);
  apply_plan(current, plan_placement(current, nodes({"n1", "n2"}), 1, 0));
  apply_plan(current, plan_placement(current, nodes({"n1"}), 1, 0));
  for (const auto& s : current) CHECK(s.assignment.replicas == std::vector<std::string>{"n1"});
}
