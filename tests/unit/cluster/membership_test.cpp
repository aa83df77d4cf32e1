#include "cluster/membership.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>

using namespace billing;
using namespace billing::cluster;

namespace {

std::vector<member> three_nodes() {
  return {
      {"node-c", "127.0.0.1", 7003}, {"node-a", "127.0.0.1", 7001}, {"node-b", "127.0.0.1", 7002}};
}

membership make_or_fail(std::vector<member> members, const std::string& self) {
  auto made = membership::make(std::move(members), self);
  REQUIRE(made.ok());
  return std::move(made).value();
}

}  // namespace

TEST_CASE("the weight is SHA-256 based, fixed across builds and machines") {
  // Pinned values: a change here would move customers between nodes on upgrade.
  CHECK(rendezvous_weight("node-a", "acme") != rendezvous_weight("node-b", "acme"));
  CHECK(rendezvous_weight("ab", "c") != rendezvous_weight("a", "bc"));
  // Computed independently: python3 sha256(be64(6) + b"node-a" + b"acme")[:8].
  CHECK(rendezvous_weight("node-a", "acme") == 0xca443d0492f52d24ULL);
}

TEST_CASE("every node computes the same owner, whatever the order of the member list") {
  const auto a = make_or_fail(three_nodes(), "node-a");
  auto reversed = three_nodes();
  std::reverse(reversed.begin(), reversed.end());
  const auto c = make_or_fail(reversed, "node-c");
  for (int i = 0; i < 1000; ++i) {
    const std::string customer = "customer-" + std::to_string(i);
    CHECK(a.owner_of(customer) == c.owner_of(customer));
    CHECK(a.is_local(customer) == (a.owner_of(customer).node_id == "node-a"));
  }
}

TEST_CASE("customers spread over the members, and a leaving member moves only its own") {
  const auto before = make_or_fail(three_nodes(), "node-a");
  auto two = three_nodes();
  two.erase(
      std::remove_if(two.begin(), two.end(), [](const member& m) { return m.node_id == "node-b"; }),
      two.end());
  const auto after = make_or_fail(two, "node-a");
  std::map<std::string, int> owned;
  int moved = 0;
  constexpr int customers = 3000;
  for (int i = 0; i < customers; ++i) {
    const std::string customer = "cust-" + std::to_string(i);
    const auto& old_owner = before.owner_of(customer).node_id;
    ++owned[old_owner];
    if (old_owner != after.owner_of(customer).node_id) {
      ++moved;
      CHECK(old_owner == "node-b");  // only node-b's customers move
    }
  }
  for (const auto& [node, count] : owned) {
    CHECK_MESSAGE(count > customers / 3 - 200, node);
    CHECK_MESSAGE(count < customers / 3 + 200, node);
  }
  CHECK(moved == owned["node-b"]);
}

TEST_CASE("member lists parse strictly") {
  auto parsed = membership::parse_members("node-a@10.0.0.1:7001,node-b@billing-1.billing:7001");
  REQUIRE(parsed.ok());
  REQUIRE(parsed.value().size() == 2);
  CHECK(parsed.value()[1] == member{"node-b", "billing-1.billing", 7001});
  for (std::string bad : {"", "node-a", "@h:1", "node-a@:1", "node-a@h", "node-a@h:0",
                          "node-a@h:70000", "node-a@h:12x", "node-a@h:1,"}) {
    auto result = membership::parse_members(bad);
    CHECK_MESSAGE(!result.ok(), bad);
  }
  CHECK_FALSE(membership::make({}, "x").ok());
  CHECK_FALSE(membership::make(three_nodes(), "node-z").ok());
  auto duplicate = three_nodes();
  duplicate.push_back(duplicate.front());
  CHECK_FALSE(membership::make(duplicate, "node-a").ok());
}
