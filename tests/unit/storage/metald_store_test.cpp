// The metald families: their values round-trip exactly, damage is data_loss,
// and what one commit writes is found by the point reads and scans.
#include <doctest/doctest.h>

#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "test_support.hpp"

using namespace billing;
using namespace billing::storage;
using namespace billing::storage::testing;

namespace {

model::vm_state sample_vm_state() {
  model::vm_state state;
  state.region = "eu-test";
  state.watermark_ns = t0 + 123;
  state.last = {t0 + 123, 1, 2, 3, 4, 5, 6};
  state.gauge_known = true;
  state.memory_remainder = 1'999'999'999;
  state.session_start_ns = t0 - minute;
  state.session_end_ns = t0 + minute;
  state.session_end_by_timeout = true;
  state.cadence_ns = 300'000'000'000;
  state.last_sample_ns = t0 + 100;
  state.stop_pending = true;
  return state;
}

template <class Decode>
void check_truncations_fail(const std::string& encoded, Decode decode) {
  for (size_t length = 0; length < encoded.size(); ++length) {
    auto decoded = decode(std::string_view(encoded).substr(0, length));
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code() == status_code::data_loss);
  }
  CHECK_FALSE(decode(encoded + 'x').ok());
}

}  // namespace

TEST_CASE("metald values round-trip exactly and refuse damage") {
  const auto state = sample_vm_state();
  const auto encoded_state = codec::encode_vm_state(state);
  auto decoded_state = codec::decode_vm_state(encoded_state);
  REQUIRE(decoded_state.ok());
  CHECK(decoded_state.value() == state);
  check_truncations_fail(encoded_state, codec::decode_vm_state);
  // A value written before the learned cadence (format 1: no cadence field) still reads.
  std::string format_1 = encoded_state.substr(0, encoded_state.size() - 16);
  format_1[0] = static_cast<char>(codec::vm_state_format_without_cadence);
  auto old_state = codec::decode_vm_state(format_1);
  REQUIRE(old_state.ok());
  auto expected_old = state;
  expected_old.cadence_ns = 0;
  expected_old.last_sample_ns = model::kNoTimestamp;
  CHECK(old_state.value() == expected_old);

  const model::metald_instance instance{t0, {"vm-1", "vm-2"}, true};
  const auto encoded_instance = codec::encode_metald_instance(instance);
  auto decoded_instance = codec::decode_metald_instance(encoded_instance);
  REQUIRE(decoded_instance.ok());
  CHECK(decoded_instance.value() == instance);
  check_truncations_fail(encoded_instance, codec::decode_metald_instance);

  check_truncations_fail(codec::encode_vm_index("acme"), codec::decode_vm_index);
  CHECK(codec::decode_metald_gap(codec::encode_metald_gap("eu")).value() == "eu");

  const model::metald_gap gap{t0 - 5, t0 + 7};
  auto key = keys::metald_gap_key("acme", "vm-9", gap);
  REQUIRE(key.ok());
  auto decoded_key = keys::decode_metald_gap_key(*key);
  REQUIRE(decoded_key.ok());
  CHECK(decoded_key->first == "vm-9");
  CHECK(decoded_key->second == gap);
}

TEST_CASE("a VM's state, its customer, an instance and gaps are read back after one commit") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  write_set writes;
  writes.put_vm_state("acme", "vm-1", sample_vm_state());
  writes.put_metald_instance("metald-1", {t0, {"vm-1"}, false});
  writes.put_metald_gap("acme", "vm-1", "eu-test", {t0, t0 + minute});
  writes.put_metald_gap("acme", "vm-1", "eu-test", {t0 + 10 * minute, t0 + 11 * minute});
  writes.put_metald_gap("acmf", "vm-2", "eu-test", {t0, t0 + minute});  // another customer
  REQUIRE(commit_and_wait(*store, std::move(writes)).ok());

  auto state = store->find_vm_state("acme", "vm-1");
  REQUIRE(state.ok());
  REQUIRE(state.value());
  CHECK(*state.value() == sample_vm_state());
  CHECK_FALSE(store->find_vm_state("acme", "vm-2").value());
  CHECK(store->find_vm_customer("vm-1").value() == std::optional<std::string>{"acme"});
  CHECK_FALSE(store->find_vm_customer("vm-2").value());
  CHECK(store->find_metald_instance("metald-1").value()->active_vms ==
        std::vector<std::string>{"vm-1"});

  std::vector<model::metald_gap> gaps;
  REQUIRE(store
              ->scan_metald_gaps("acme", t0 + minute / 2, t0 + 10 * minute + 1,
                                 [&](const std::string& vm, const std::string& region,
                                     const model::metald_gap& gap) {
                                   CHECK(vm == "vm-1");
                                   CHECK(region == "eu-test");
                                   gaps.push_back(gap);
                                   return true;
                                 })
              .ok());
  CHECK(gaps ==
        std::vector<model::metald_gap>{{t0, t0 + minute}, {t0 + 10 * minute, t0 + 11 * minute}});
  std::vector<std::string> vms;
  REQUIRE(store
              ->scan_vm_states("acme",
                               [&](const std::string& vm, const model::vm_state& state) {
                                 CHECK(state == sample_vm_state());
                                 vms.push_back(vm);
                                 return true;
                               })
              .ok());
  CHECK(vms == std::vector<std::string>{"vm-1"});
  size_t instances = 0;
  REQUIRE(store
              ->scan_metald_instances([&](const std::string& id, const model::metald_instance&) {
                CHECK(id == "metald-1");
                ++instances;
                return true;
              })
              .ok());
  CHECK(instances == 1);
}
