#include "storage/codec.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "test_support.hpp"

using namespace billing;
using namespace billing::storage;
using billing::storage::testing::check_same_window;
using billing::storage::testing::sample_window;

namespace {

constexpr uint64_t max_u64 = std::numeric_limits<uint64_t>::max();

conflict_record sample_conflict() {
  conflict_record record;
  record.meta = {"batch-7", "metald-3", "eu-west-1", 1'700'000'000'123'456'789, ""};
  record.attempted = sample_window("cust", "eu-west-1", "vm-1", 1'700'000'000'000'000'000, 5);
  record.stored = sample_window("cust", "eu-west-1", "vm-1", 1'700'000'000'000'000'000, 6);
  return record;
}

template <class Decode>
void check_every_truncation_fails(const std::string& encoded, Decode decode) {
  for (size_t length = 0; length < encoded.size(); ++length) {
    auto decoded = decode(std::string_view(encoded).substr(0, length));
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code() == status_code::data_loss);
  }
  auto padded = decode(encoded + 'x');
  REQUIRE_FALSE(padded.ok());
  CHECK(padded.error().code() == status_code::data_loss);
  std::string other_version = encoded;
  other_version[0] = static_cast<char>(other_version[0] + 1);
  auto unknown = decode(other_version);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message().find("format version") != std::string::npos);
}

}  // namespace

// The dedup check compares the billed values decoded from the stored window.
TEST_CASE("window values that differ in any single billed field encode differently") {
  const auto base = sample_window("c", "r", "v", 0);
  const auto base_encoded = codec::encode_window_value(base);
  for (int field = 0; field < 10; ++field) {
    auto changed = base;
    uint64_t* fields[] = {&changed.cpu_time_nanos,    &changed.memory_bytes_used,
                          &changed.memory_bytes_peak, &changed.memory_bytes_seconds,
                          &changed.disk_read_bytes,   &changed.disk_write_bytes,
                          &changed.disk_read_ops,     &changed.disk_write_ops,
                          &changed.network_rx_bytes,  &changed.network_tx_bytes};
    *fields[field] ^= 1;
    CHECK(codec::encode_window_value(changed) != base_encoded);
    auto decoded = codec::decode_window_value(model::window_identity::of(changed),
                                              codec::encode_window_value(changed));
    REQUIRE(decoded.ok());
    CHECK(decoded.value().same_billed_values(changed));
    CHECK_FALSE(decoded.value().same_billed_values(base));
  }
}

TEST_CASE("window values round trip every field, doubles bit-exact") {
  auto window = sample_window("c", "r", "v", -1'000, 3);
  window.sampled_at_ns = std::numeric_limits<int64_t>::min();
  window.memory_bytes_peak = max_u64;
  const double specials[] = {-0.0,
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::denorm_min(),
                             std::numeric_limits<double>::max(),
                             std::bit_cast<double>(uint64_t{0x7ff8'dead'beef'0001}),  // NaN payload
                             0.1};
  for (double special : specials) {
    window.cpu_utilization_pct = special;
    window.cpu_cores_used = -special;
    auto encoded = codec::encode_window_value(window);
    CHECK(encoded.size() == 1 + 8 * 13);
    auto decoded = codec::decode_window_value(model::window_identity::of(window), encoded);
    REQUIRE_MESSAGE(decoded.ok(), decoded.error().message());
    CHECK(std::bit_cast<uint64_t>(decoded.value().cpu_utilization_pct) ==
          std::bit_cast<uint64_t>(special));
    CHECK(std::bit_cast<uint64_t>(decoded.value().cpu_cores_used) ==
          std::bit_cast<uint64_t>(-special));
    CHECK(model::window_identity::of(decoded.value()) == model::window_identity::of(window));
    CHECK(decoded.value().sampled_at_ns == window.sampled_at_ns);
    CHECK(decoded.value().billed_values() == window.billed_values());
    auto gauge = codec::decode_window_memory_used(encoded);
    REQUIRE(gauge.ok());
    CHECK(gauge.value() == window.memory_bytes_used);
  }
}

TEST_CASE("conflict records round trip") {
  const auto record = sample_conflict();
  auto decoded = codec::decode_conflict(codec::encode_conflict(record));
  REQUIRE_MESSAGE(decoded.ok(), decoded.error().message());
  CHECK(decoded.value().meta.batch_id == record.meta.batch_id);
  CHECK(decoded.value().meta.instance_id == record.meta.instance_id);
  CHECK(decoded.value().meta.region == record.meta.region);
  CHECK(decoded.value().meta.received_at_ns == record.meta.received_at_ns);
  check_same_window(decoded.value().attempted, record.attempted);
  check_same_window(decoded.value().stored, record.stored);
}

TEST_CASE("conflict records with empty strings round trip") {
  conflict_record record;
  auto decoded = codec::decode_conflict(codec::encode_conflict(record));
  REQUIRE_MESSAGE(decoded.ok(), decoded.error().message());
  CHECK(decoded.value().meta.batch_id.empty());
  check_same_window(decoded.value().stored, record.stored);
}

TEST_CASE("every truncation, padding or unknown version decodes to data_loss") {
  const auto window = sample_window("c", "r", "v", 0);
  const auto id = model::window_identity::of(window);
  SUBCASE("windows value") {
    check_every_truncation_fails(codec::encode_window_value(window), [&](std::string_view v) {
      return codec::decode_window_value(id, v);
    });
  }
  SUBCASE("windows value, memory gauge alone") {
    check_every_truncation_fails(codec::encode_window_value(window), [](std::string_view v) {
      return codec::decode_window_memory_used(v);
    });
  }
  SUBCASE("conflict record") {
    check_every_truncation_fails(codec::encode_conflict(sample_conflict()),
                                 [](std::string_view v) { return codec::decode_conflict(v); });
  }
  SUBCASE("ingest record") {
    const ingest_record record{"c", {"b-1", "metald-1", "eu-west-1", -5, "t"}, 1, 2, 3};
    check_every_truncation_fails(codec::encode_ingest_record(record),
                                 [](std::string_view v) { return codec::decode_ingest_record(v); });
  }
}

TEST_CASE("ingest records round trip; their format byte tells them from conflicts") {
  const ingest_record record{
      "c", {"b-1", "metald-1", "eu-west-1", -5, "token-eu"}, 7, 0, 4294967295u};
  const auto encoded = codec::encode_ingest_record(record);
  CHECK(static_cast<uint8_t>(encoded[0]) == codec::ingest_record_format);
  CHECK(codec::ingest_record_format != codec::conflict_format);
  auto decoded = codec::decode_ingest_record(encoded);
  REQUIRE(decoded.ok());
  CHECK(decoded->customer_id.empty());  // the key holds it
  CHECK(decoded->meta.batch_id == "b-1");
  CHECK(decoded->meta.instance_id == "metald-1");
  CHECK(decoded->meta.region == "eu-west-1");
  CHECK(decoded->meta.received_at_ns == -5);
  CHECK(decoded->meta.caller == "token-eu");
  CHECK(decoded->accepted == 7);
  CHECK(decoded->duplicate == 0);
  CHECK(decoded->rejected == 4294967295u);
  CHECK(codec::decode_conflict(encoded).error().code() == status_code::data_loss);
}

TEST_CASE("a huge string length in a conflict record is an error, not an allocation") {
  std::string encoded(1, static_cast<char>(codec::conflict_format));
  encoded += "\xff\xff\xff\xf0";  // batch_id claims almost 4 GiB
  encoded += "tiny";
  auto decoded = codec::decode_conflict(encoded);
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.error().code() == status_code::data_loss);
}

TEST_CASE("random bytes never crash the value decoders; what decodes is canonical") {
  std::mt19937_64 random(7);
  const model::window_identity id{"c", "r", "v", 0, 1};
  const auto valid_conflict = codec::encode_conflict(sample_conflict());
  int decoded_count = 0;
  // Decoding must fail cleanly or give a value that encodes to the same bytes:
  // no two byte strings may mean the same thing.
  auto check_canonical = [&](std::string_view input, const auto& decoded, auto encode) {
    if (decoded.ok()) {
      ++decoded_count;
      CHECK(encode(decoded.value()) == input);
    } else {
      CHECK(decoded.error().code() == status_code::data_loss);
    }
  };
  for (int round = 0; round < 20'000; ++round) {
    std::string noise(random() % 128, '\0');
    for (auto& byte : noise) byte = static_cast<char>(random());
    // Mostly well-versioned noise of the right sizes, so that the decoders get
    // past the first byte and the length checks.
    if (round % 4 != 0) {
      noise.resize(round % 2 == 0 ? 81 : 105);
      noise[0] = 1;
    }
    check_canonical(noise, codec::decode_window_value(id, noise),
                    [](const auto& w) { return codec::encode_window_value(w); });
    check_canonical(noise, codec::decode_conflict(noise),
                    [](const auto& r) { return codec::encode_conflict(r); });
    check_canonical(noise, codec::decode_schema_version(noise),
                    [](uint32_t v) { return codec::encode_schema_version(v); });
    // Changed bytes in a real record: must decode to something or fail cleanly.
    auto changed = valid_conflict;
    changed[random() % changed.size()] = static_cast<char>(random());
    check_canonical(changed, codec::decode_conflict(changed),
                    [](const auto& r) { return codec::encode_conflict(r); });
  }
  CHECK(decoded_count > 10'000);  // the noise did exercise the success paths
}

TEST_CASE("schema version encodes as 4 big-endian bytes; anything else is data_loss") {
  CHECK(codec::encode_schema_version(0x01020304) == "\x01\x02\x03\x04");
  auto decoded = codec::decode_schema_version(codec::encode_schema_version(7));
  REQUIRE(decoded.ok());
  CHECK(decoded.value() == 7);
  for (std::string_view bad :
       {std::string_view{}, std::string_view("\0\0\0", 3), std::string_view("\0\0\0\0\0", 5)}) {
    auto rejected = codec::decode_schema_version(bad);
    REQUIRE_FALSE(rejected.ok());
    CHECK(rejected.error().code() == status_code::data_loss);
  }
}
