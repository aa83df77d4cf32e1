#include "storage/keys.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "storage/bytes.hpp"

using namespace billing;
using namespace billing::storage;

namespace {

std::string encoded_timestamp(int64_t ns) {
  std::string out;
  keys::append_timestamp(out, ns);
  return out;
}

model::window_identity identity(std::string customer, int64_t start, std::string region,
                                std::string vm, int64_t end) {
  return {std::move(customer), std::move(region), std::move(vm), start, end};
}

std::string must(result<std::string> encoded) {
  REQUIRE_MESSAGE(encoded.ok(), encoded.error().message());
  return std::move(encoded).value();
}

bool starts_with(const std::string& key, const std::string& prefix) {
  return key.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

TEST_CASE("timestamps sort by byte order in numeric order, also before the epoch") {
  const std::vector<int64_t> numeric = {std::numeric_limits<int64_t>::min(),
                                        -1'000'000'000'000'000'000,
                                        -256,
                                        -1,
                                        0,
                                        1,
                                        255,
                                        256,
                                        1'700'000'000'000'000'000,
                                        std::numeric_limits<int64_t>::max()};
  std::vector<std::string> encoded;
  for (auto ns : numeric) encoded.push_back(encoded_timestamp(ns));
  CHECK(std::is_sorted(encoded.begin(), encoded.end()));
  CHECK(std::adjacent_find(encoded.begin(), encoded.end()) == encoded.end());

  for (auto ns : numeric) {
    bytes::reader in(encoded_timestamp(ns));
    auto ordered = in.u64();
    REQUIRE(ordered);
    CHECK(keys::timestamp_from_ordered(*ordered) == ns);
  }
}

TEST_CASE("the sign bit is flipped and the rest is big-endian") {
  CHECK(encoded_timestamp(0) == std::string("\x80\0\0\0\0\0\0\0", 8));
  CHECK(encoded_timestamp(-1) == std::string("\x7f\xff\xff\xff\xff\xff\xff\xff", 8));
  CHECK(encoded_timestamp(0x0102) == std::string("\x80\0\0\0\0\0\x01\x02", 8));
}

TEST_CASE("window keys round trip through decode_window_key") {
  for (const auto& id : {identity("cust-1", 1'700'000'000'000'000'000, "eu-west-1", "vm-9",
                                  1'700'000'060'000'000'000),
                         identity("c", -5, "", "", std::numeric_limits<int64_t>::max()),
                         identity(std::string(255, '\xff'), std::numeric_limits<int64_t>::min(),
                                  std::string(1, '\0'), "vm", 0)}) {
    auto decoded = keys::decode_window_key(must(keys::window_key(id)));
    REQUIRE_MESSAGE(decoded.ok(), decoded.error().message());
    CHECK(decoded.value() == id);
  }
}

TEST_CASE("window key layout is customer | start | region | vm | end, byte by byte") {
  auto key = must(keys::window_key(identity("ab", 1, "r", "vm", 2)));
  std::string expected = std::string(
                             "\x02"
                             "ab") +
                         encoded_timestamp(1) + "\x01r" + "\x02vm" + encoded_timestamp(2);
  CHECK(key == expected);
}

TEST_CASE("dedup key layout is customer | region | vm | start | end, byte by byte") {
  auto key = must(keys::dedup_key(identity("ab", 1, "r", "vm", 2)));
  std::string expected = std::string(
                             "\x02"
                             "ab") +
                         "\x01r" + "\x02vm" + encoded_timestamp(1) + encoded_timestamp(2);
  CHECK(key == expected);
}

TEST_CASE("window keys of one customer sort by start, then region, then vm, then end") {
  // Listed in the expected order; regions and vm ids of equal length compare
  // bytewise, shorter ones first (the length byte comes first).
  const std::vector<model::window_identity> ordered = {
      identity("c", -60, "r2", "vm-b", 0),
      identity("c", -1, "r1", "vm-a", 0),
      identity("c", 0, "r1", "vm-a", 60),
      identity("c", 0, "r1", "vm-a", 61),
      identity("c", 0, "r1", "vm-b", 60),
      identity("c", 0, "r2", "vm-a", 60),
      identity("c", 0, "r10", "vm-a", 60),
      identity("c", 60, "r1", "vm-a", 120),
      identity("c", 1LL << 40, "r1", "vm-a", (1LL << 40) + 60)};
  std::vector<std::string> encoded;
  for (const auto& id : ordered) encoded.push_back(must(keys::window_key(id)));
  CHECK(std::is_sorted(encoded.begin(), encoded.end()));
  CHECK(std::adjacent_find(encoded.begin(), encoded.end()) == encoded.end());
}

TEST_CASE("customer prefix bounds: customer a's range excludes customer ab and others") {
  const auto prefix_a = must(keys::customer_prefix("a"));
  const auto upper_a = keys::prefix_successor(prefix_a);
  REQUIRE(upper_a);
  auto in_range_of_a = [&](const std::string& key) { return key >= prefix_a && key < *upper_a; };
  const auto window_start = std::numeric_limits<int64_t>::max();
  CHECK(in_range_of_a(must(keys::window_key(identity("a", 0, "r", "v", 1)))));
  CHECK(in_range_of_a(must(keys::window_key(identity("a", window_start, "\xff", "\xff", -1)))));
  CHECK_FALSE(in_range_of_a(must(keys::window_key(identity("ab", 0, "r", "v", 1)))));
  CHECK_FALSE(in_range_of_a(must(keys::window_key(identity("b", 0, "r", "v", 1)))));
  CHECK_FALSE(in_range_of_a(must(keys::window_key(identity("", 0, "r", "v", 1)))));
  CHECK_FALSE(in_range_of_a(must(keys::dedup_key(identity("ab", 0, "r", "v", 1)))));
  CHECK_FALSE(starts_with(must(keys::window_key(identity("ab", 0, "r", "v", 1))), prefix_a));
}

TEST_CASE("prefix_successor carries over 0xff bytes and has none for all-0xff prefixes") {
  CHECK(keys::prefix_successor(std::string("\x01"
                                           "a")) == std::string("\x01"
                                                                "b"));
  CHECK(keys::prefix_successor(std::string("\x02"
                                           "a\xff")) == std::string("\x02"
                                                                    "b"));
  CHECK_FALSE(keys::prefix_successor(std::string("\xff\xff")).has_value());
  CHECK_FALSE(keys::prefix_successor("").has_value());
}

TEST_CASE("ids longer than a 1-byte length are refused, not truncated") {
  CHECK(keys::customer_prefix(std::string(255, 'x')).ok());
  auto too_long = keys::customer_prefix(std::string(256, 'x'));
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.error().code() == status_code::invalid_argument);
  CHECK(too_long.error().message().find("customer_id") != std::string::npos);

  auto long_vm = keys::window_key(identity("c", 0, "r", std::string(300, 'v'), 1));
  REQUIRE_FALSE(long_vm.ok());
  CHECK(long_vm.error().code() == status_code::invalid_argument);
  CHECK_FALSE(keys::dedup_key(identity("c", 0, std::string(256, 'r'), "v", 1)).ok());
  CHECK_FALSE(keys::audit_key_without_sequence(std::string(256, 'c'), 0).ok());
}

TEST_CASE("truncated or padded window keys decode to data_loss") {
  const auto key = must(keys::window_key(identity("cust", 7, "region", "vm", 9)));
  for (size_t length = 0; length < key.size(); ++length) {
    auto decoded = keys::decode_window_key(std::string_view(key).substr(0, length));
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code() == status_code::data_loss);
  }
  auto padded = keys::decode_window_key(key + '\0');
  REQUIRE_FALSE(padded.ok());
  CHECK(padded.error().code() == status_code::data_loss);
}

TEST_CASE("random bytes never crash decode_window_key") {
  std::mt19937_64 random(42);
  for (int round = 0; round < 20'000; ++round) {
    std::string noise(random() % 64, '\0');
    for (auto& byte : noise) byte = static_cast<char>(random());
    auto decoded = keys::decode_window_key(noise);
    if (decoded.ok()) {
      // Whatever decodes must be exactly what re-encodes to the same bytes.
      CHECK(must(keys::window_key(decoded.value())) == noise);
    } else {
      CHECK(decoded.error().code() == status_code::data_loss);
    }
  }
}

TEST_CASE("audit keys: customer | recorded_at | sequence") {
  auto key = must(keys::audit_key_without_sequence("ab", -3));
  keys::append_audit_sequence(key, 0x0102);
  CHECK(key == std::string("\x02"
                           "ab") +
                   encoded_timestamp(-3) + std::string("\0\0\0\0\0\0\x01\x02", 8));
}
