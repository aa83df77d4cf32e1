// The etcd client against a real etcd started by the test (no mock): keys
// and values with arbitrary bytes, prefixes, compare-and-swap transactions,
// leases, and etcd unreachable (stopped, or a dead endpoint first).
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "cluster/etcd/etcd_client.hpp"
#include "tests/unit/support/etcd_server.hpp"

using namespace billing;
using namespace billing::cluster::etcd;

namespace {

std::unique_ptr<etcd_client> client_for(std::vector<std::string> endpoints,
                                        std::string prefix = "/test/") {
  etcd_settings settings;
  settings.endpoints = std::move(endpoints);
  settings.prefix = std::move(prefix);
  settings.timeout = std::chrono::milliseconds(1000);
  auto made = etcd_client::make(settings);
  REQUIRE(made.ok());
  return std::move(made).value();
}

}  // namespace

TEST_CASE("etcd client: put, get and prefix ranges with arbitrary bytes") {
  testing::etcd_server etcd;
  auto client = client_for({etcd.endpoint()});
  const std::string binary_value{"\0\xff\x01 value", 9};
  auto written = client->put("members/n1", binary_value);
  REQUIRE(written.ok());
  CHECK(written.value() > 0);
  REQUIRE(client->put("members/n2", "two").ok());
  REQUIRE(client->put("membersX", "not under members/").ok());
  // Another prefix is another namespace.
  REQUIRE(client_for({etcd.endpoint()}, "/other/")->put("members/n3", "elsewhere").ok());

  auto one = client->get("members/n1");
  REQUIRE(one.ok());
  REQUIRE(one.value().kvs.size() == 1);
  CHECK(one.value().kvs[0].key == "members/n1");
  CHECK(one.value().kvs[0].value == binary_value);
  CHECK(one.value().kvs[0].version == 1);
  CHECK(one.value().kvs[0].mod_revision == written.value());

  auto members = client->get_prefix("members/");
  REQUIRE(members.ok());
  REQUIRE(members.value().kvs.size() == 2);
  CHECK(members.value().kvs[0].key == "members/n1");
  CHECK(members.value().kvs[1].key == "members/n2");
  CHECK(members.value().kvs[1].value == "two");

  auto absent = client->get("members/none");
  REQUIRE(absent.ok());
  CHECK(absent.value().kvs.empty());
  REQUIRE(client->erase("members/n2").ok());
  CHECK(client->get_prefix("members/").value().kvs.size() == 1);
}

TEST_CASE("etcd client: compare-and-swap transactions write all or nothing") {
  testing::etcd_server etcd;
  auto client = client_for({etcd.endpoint()});
  auto created = client->put_all_if({{"a", "1", 0}, {"b", "1", 0}});
  REQUIRE(created.ok());
  CHECK(created.value());
  // Creating again fails: both exist now.
  auto again = client->put_all_if({{"a", "2", 0}});
  REQUIRE(again.ok());
  CHECK_FALSE(again.value());

  const auto a = client->get("a").value().kvs.at(0);
  const auto b = client->get("b").value().kvs.at(0);
  // One stale expectation spoils the whole transaction.
  auto mixed = client->put_all_if({{"a", "2", a.mod_revision}, {"b", "2", b.mod_revision - 1}});
  REQUIRE(mixed.ok());
  CHECK_FALSE(mixed.value());
  CHECK(client->get("a").value().kvs.at(0).value == "1");
  auto swapped = client->put_all_if({{"a", "2", a.mod_revision}, {"b", "2", b.mod_revision}});
  REQUIRE(swapped.ok());
  CHECK(swapped.value());
  CHECK(client->get("a").value().kvs.at(0).value == "2");
  CHECK(client->get("b").value().kvs.at(0).value == "2");
}

TEST_CASE("etcd client: leases keep keys alive until revoked or expired") {
  testing::etcd_server etcd;
  auto client = client_for({etcd.endpoint()});
  auto lease = client->grant_lease(2);
  REQUIRE(lease.ok());
  REQUIRE(client->put("members/n1", "me", lease.value()).ok());
  CHECK(client->get("members/n1").value().kvs.at(0).lease == lease.value());
  auto ttl = client->keep_alive(lease.value());
  REQUIRE(ttl.ok());
  CHECK(ttl.value() > 0);
  REQUIRE(client->revoke_lease(lease.value()).ok());
  CHECK(client->get("members/n1").value().kvs.empty());
  auto gone = client->keep_alive(lease.value());
  REQUIRE(gone.ok());
  CHECK(gone.value() == 0);

  // Not kept alive: the key goes when the TTL runs out.
  auto short_lease = client->grant_lease(1);
  REQUIRE(short_lease.ok());
  REQUIRE(client->put("members/n2", "me", short_lease.value()).ok());
  bool expired = false;
  for (int waited = 0; waited < 60 && !expired; ++waited) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    expired = client->get("members/n2").value().kvs.empty();
  }
  CHECK(expired);
  CHECK(client->keep_alive(short_lease.value()).value() == 0);
}

TEST_CASE("etcd client: unreachable etcd is an unavailable status, and it recovers") {
  testing::etcd_server etcd;
  // A dead endpoint first: the live one answers.
  const std::string dead = "http://127.0.0.1:" + std::to_string(testing::free_loopback_port());
  auto client = client_for({dead, etcd.endpoint()});
  REQUIRE(client->put("k", "v").ok());
  CHECK(client->current_endpoint() == etcd.endpoint());

  etcd.stop();
  const auto before = std::chrono::steady_clock::now();
  auto failed = client->get("k");
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().code() == status_code::unavailable);
  CHECK(failed.error().message().find("etcd unreachable") != std::string::npos);
  // Bounded by the timeout per endpoint (two endpoints here), not hanging.
  CHECK(std::chrono::steady_clock::now() - before < std::chrono::seconds(5));
  CHECK_FALSE(client->grant_lease(5).ok());

  etcd.start();
  auto back = client->get("k");
  REQUIRE(back.ok());
  CHECK(back.value().kvs.at(0).value == "v");
}

TEST_CASE("etcd client: bad settings are refused") {
  CHECK_FALSE(etcd_client::make({}).ok());
  etcd_settings bad;
  bad.endpoints = {"ftp://127.0.0.1:1"};
  CHECK(etcd_client::make(bad).error().code() == status_code::invalid_argument);
  CHECK(prefix_end("/a/") == "/a0");
  CHECK(prefix_end(std::string("a\xff", 2)) == "b");
}
