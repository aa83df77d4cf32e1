#include "cluster/handoff.hpp"

#include <doctest/doctest.h>
#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "storage/keys.hpp"
#include "tests/unit/storage/test_support.hpp"

namespace billing::cluster {
namespace {

using storage::testing::sample_window;

struct system_fixture {
  static caf::actor_system_config& configured(caf::actor_system_config& config) {
    actors::add_message_types(config);
    return config;
  }
  caf::actor_system_config config;
  caf::actor_system system{configured(config)};
};

model::customer_part sample_part() {
  model::customer_part part;
  part.customer_id = "cust-a";
  part.meta = {"batch-1", "metald-7", "eu-west-1", 1'700'000'000'000'000'000, "token-x"};
  part.indices = {3, 9};
  part.windows = {sample_window("cust-a", "eu-west-1", "vm-1", storage::testing::t0, 1),
                  sample_window("cust-a", "eu-west-1", "vm-2", storage::testing::t0, 2)};
  return part;
}

TEST_CASE_FIXTURE(system_fixture, "a held customer part decodes to exactly what was held") {
  handoff_message held{sample_part()};
  auto value = encode_handoff(system, held);
  REQUIRE(value.ok());
  auto decoded = decode_handoff(system, value.value());
  REQUIRE_MESSAGE(decoded.ok(), decoded.error().message());
  REQUIRE(std::holds_alternative<model::customer_part>(decoded.value()));
  const auto& part = std::get<model::customer_part>(decoded.value());
  const auto expected = sample_part();
  CHECK(handoff_customer(decoded.value()) == "cust-a");
  CHECK(part.meta.batch_id == expected.meta.batch_id);
  CHECK(part.meta.caller == expected.meta.caller);
  CHECK(part.meta.received_at_ns == expected.meta.received_at_ns);
  CHECK(part.indices == expected.indices);
  REQUIRE(part.windows.size() == 2);
  for (size_t i = 0; i < 2; ++i)
    storage::testing::check_same_window(part.windows[i], expected.windows[i]);
}

TEST_CASE_FIXTURE(system_fixture, "a held metald operation decodes to exactly what was held") {
  model::metald_op op;
  op.kind = model::metald_op_kind::samples;
  op.customer_id = "cust-b";
  op.region = "default";
  op.vm_id = "vm-9";
  op.gap_after_ns = 60'000'000'000;
  op.samples = {{100, 5, 6, 7, 8, 9, 10}, {200, 15, 16, 17, 18, 19, 20}};
  handoff_message held{op};
  auto value = encode_handoff(system, held);
  REQUIRE(value.ok());
  auto decoded = decode_handoff(system, value.value());
  REQUIRE(decoded.ok());
  REQUIRE(std::holds_alternative<model::metald_op>(decoded.value()));
  const auto& back = std::get<model::metald_op>(decoded.value());
  CHECK(back.kind == op.kind);
  CHECK(back.customer_id == "cust-b");
  CHECK(back.vm_id == "vm-9");
  CHECK(back.gap_after_ns == op.gap_after_ns);
  REQUIRE(back.samples.size() == 2);
  CHECK(back.samples[1].timestamp_ns == 200);
  CHECK(back.samples[1].network_tx_bytes == 20);
}

TEST_CASE_FIXTURE(system_fixture,
                  "unknown or truncated handoff records are data_loss, never a crash") {
  handoff_message held{sample_part()};
  auto value = encode_handoff(system, held).value();
  CHECK(decode_handoff(system, "").error().code() == status_code::data_loss);
  CHECK(decode_handoff(system, std::string("\x02\x01", 2)).error().code() ==
        status_code::data_loss);
  CHECK(decode_handoff(system, std::string("\x01\x07", 2)).error().code() ==
        status_code::data_loss);
  for (size_t cut : {size_t{3}, value.size() / 2, value.size() - 1}) {
    CHECK(!decode_handoff(system, std::string_view(value).substr(0, cut)).ok());
  }
}

TEST_CASE("held writes are stored per owner in sequence order and erased once delivered") {
  storage::testing::temp_dir dir;
  auto store = storage::testing::open_store(storage::testing::options_for(dir));
  storage::write_set writes;
  writes.put_handoff("n2", 7, "seven");
  writes.put_handoff("n2", 300, "three hundred");
  writes.put_handoff("n10", 1, "other node");
  REQUIRE(storage::testing::commit_and_wait(*store, std::move(writes)).ok());

  auto held_for = [&](std::string_view node) {
    std::vector<std::pair<uint64_t, std::string>> held;
    auto prefix = storage::keys::handoff_prefix(node).value();
    REQUIRE(store
                ->scan_range(storage::handoff_family, prefix,
                             storage::keys::prefix_successor(prefix),
                             [&](std::string_view key, std::string_view value) {
                               held.emplace_back(storage::keys::handoff_sequence(key).value(),
                                                 std::string(value));
                               return true;
                             })
                .ok());
    return held;
  };
  CHECK(held_for("n2") ==
        std::vector<std::pair<uint64_t, std::string>>{{7, "seven"}, {300, "three hundred"}});
  CHECK(held_for("n10").size() == 1);

  storage::write_set erase;
  erase.erase_handoff("n2", 7);
  REQUIRE(storage::testing::commit_and_wait(*store, std::move(erase)).ok());
  CHECK(held_for("n2") == std::vector<std::pair<uint64_t, std::string>>{{300, "three hundred"}});
  CHECK(!storage::keys::handoff_sequence("not a handoff key").has_value());
}

}  // namespace
}  // namespace billing::cluster
