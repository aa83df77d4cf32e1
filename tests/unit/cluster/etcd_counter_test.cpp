// The cluster-wide counter (invoice numbers) and member records against a
// real etcd: concurrent takers never get the same value, and a taker's
// values grow; a record that is not a counter is an error, not a reset.
#include <doctest/doctest.h>

#include <mutex>
#include <set>
#include <thread>

#include "cluster/etcd/coordinator.hpp"
#include "cluster/etcd/counter.hpp"
#include "tests/unit/support/etcd_server.hpp"

using namespace billing;
using namespace billing::cluster::etcd;

namespace {

std::unique_ptr<etcd_client> client_for(const testing::etcd_server& etcd) {
  etcd_settings settings;
  settings.endpoints = {etcd.endpoint()};
  settings.prefix = "/count/";
  auto made = etcd_client::make(settings);
  REQUIRE(made.ok());
  return std::move(made).value();
}

}  // namespace

TEST_CASE("etcd counter: concurrent takers get disjoint, increasing blocks") {
  testing::etcd_server etcd;
  auto first = client_for(etcd);
  auto one = take_from_counter(*first, "n", 1);
  REQUIRE(one.ok());
  CHECK(one.value() == 1);  // an absent counter starts at 1

  constexpr int kThreads = 4;
  constexpr int kTakes = 15;
  std::mutex guard;
  std::set<uint64_t> taken{1};
  bool all_ok = true;
  bool increasing = true;
  std::vector<std::thread> takers;
  for (int t = 0; t < kThreads; ++t) {
    takers.emplace_back([&, t] {
      auto client = client_for(etcd);  // one client per node, as in a cluster
      uint64_t last = 0;
      for (int i = 0; i < kTakes; ++i) {
        const uint64_t count = 1 + (t + i) % 3;
        auto block = take_from_counter(*client, "n", count);
        std::lock_guard lock(guard);
        if (!block.ok()) {
          all_ok = false;
          return;
        }
        if (block.value() <= last) increasing = false;
        last = block.value();
        for (uint64_t v = block.value(); v < block.value() + count; ++v) {
          if (!taken.insert(v).second) all_ok = false;  // handed out twice
        }
      }
    });
  }
  for (auto& taker : takers) taker.join();
  CHECK(all_ok);
  CHECK(increasing);
  // No gaps either: every value up to the counter's was handed out once.
  CHECK(*taken.rbegin() == taken.size());
  CHECK(first->get("n").value().kvs.at(0).value == std::to_string(taken.size() + 1));

  REQUIRE(first->put("bad", "twelve").ok());
  auto bad = take_from_counter(*first, "bad", 1);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code() == status_code::internal);
  CHECK(first->get("bad").value().kvs.at(0).value == "twelve");
}

TEST_CASE("etcd counter: unreachable etcd is unavailable") {
  testing::etcd_server etcd;
  auto client = client_for(etcd);
  etcd.stop();
  auto taken = take_from_counter(*client, "n", 1);
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.error().code() == status_code::unavailable);
}

TEST_CASE("member records round-trip and bad ones are refused") {
  const cluster::member m{"n7", "10.0.0.7", 4107};
  auto decoded = decode_member(encode_member(m, "10.0.0.7:8080"));
  REQUIRE(decoded.ok());
  CHECK(decoded.value() == m);
  CHECK_FALSE(decode_member("{}").ok());
  CHECK_FALSE(decode_member("not json").ok());
  CHECK_FALSE(decode_member(R"({"nodeId":"n1","clusterHost":"h","clusterPort":70000})").ok());
}

TEST_CASE("a leaving member set excludes this node and owns nothing") {
  const cluster::member me{"n1", "127.0.0.1", 1};
  auto leaving = cluster::membership::leaving(me, {me, {"n2", "127.0.0.1", 2}});
  REQUIRE(leaving.ok());
  CHECK(leaving.value().members().size() == 1);
  CHECK(leaving.value().self().node_id == "n1");
  CHECK_FALSE(leaving.value().is_local("any customer"));
  CHECK(leaving.value().owner_of("any customer").node_id == "n2");
  CHECK_FALSE(cluster::membership::leaving(me, {me}).ok());
}
