// A customer ledger actor applying metald samples on a real RocksDB: the VM
// states it caches between commit groups never stand in for what is stored.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include "../storage/raw_rocksdb.hpp"
#include "../storage/test_support.hpp"
#include "actors/customer_ledger.hpp"
#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "model/calendar.hpp"

using namespace billing;
using namespace billing::storage::testing;

namespace {

constexpr int64_t tenth = 100'000'000;  // metald's sample spacing

// Samples number first+1 .. first+count of a VM whose CPU counter grows 1000
// per sample from zero at t0 (its start).
model::metald_op samples_op(uint64_t first, uint64_t count) {
  model::metald_op op;
  op.kind = model::metald_op_kind::samples;
  op.customer_id = "acme";
  op.region = "eu";
  op.vm_id = "vm-1";
  for (uint64_t n = first + 1; n <= first + count; ++n) {
    model::metald_sample sample;
    sample.timestamp_ns = t0 + static_cast<int64_t>(n) * tenth;
    sample.cpu_time_nanos = n * 1000;
    op.samples.push_back(sample);
  }
  return op;
}

model::metald_op start_op() {
  auto op = samples_op(0, 0);
  op.kind = model::metald_op_kind::start;
  op.at_ns = t0;
  return op;
}

// What the ledger answers for `op`: the number of new samples, or the error's status.
result<uint32_t> apply(caf::actor_system& system, const actors::customer_actor& ledger,
                       model::metald_op op) {
  caf::scoped_actor self{system};
  result<uint32_t> outcome = status{status_code::internal, "no answer"};
  self->request(ledger, std::chrono::seconds{10}, actors::metald_atom::value, std::move(op))
      .receive([&](uint32_t added) { outcome = added; },
               [&](caf::error& error) { outcome = actors::to_status(error); });
  return outcome;
}

uint64_t stored_cpu(const storage::ledger_store& store) {
  uint64_t cpu = 0;
  REQUIRE(store
              .scan_rollups("acme", model::granularity::hour, t0 - model::kNanosPerHour,
                            t0 + model::kNanosPerDay,
                            [&](const model::rollup_id&, const model::rollup_value& value) {
                              cpu += value.totals.cpu_time_nanos;
                              return true;
                            })
              .ok());
  return cpu;
}

struct actor_config : caf::actor_system_config {
  actor_config() { actors::add_message_types(*this); }
};

}  // namespace

TEST_CASE("a VM state whose write failed is read again from the store, never from the cache") {
  for (auto fault : {wal_fault::append, wal_fault::sync}) {
    CAPTURE(static_cast<int>(fault));
    temp_dir dir;
    auto failing = std::make_shared<std::atomic<bool>>(false);
    auto options = options_for(dir);
    options.env = faulty_env(fault, failing);
    auto store = open_store(options);
    actor_config config;
    caf::actor_system system{config};
    auto ledger = actors::spawn_customer_ledger(system, "acme", store);

    REQUIRE(apply(system, ledger, start_op()).ok());
    auto first = apply(system, ledger, samples_op(0, 10));
    REQUIRE(first.ok());
    CHECK(first.value() == 10);  // cached now: the next group does not read the store

    failing->store(true);
    CHECK(apply(system, ledger, samples_op(10, 10)).error().code() == status_code::unavailable);
    failing->store(false);
    // The retry of the failed batch: its samples count exactly once, whether
    // or not the failed write reappeared from the WAL when the store reopened
    // (a cache that kept the failed group's state would drop them).
    auto retried = apply(system, ledger, samples_op(10, 10));
    REQUIRE(retried.ok());
    if (fault == wal_fault::append) CHECK(retried.value() == 10);  // nothing reached the WAL
    CHECK(stored_cpu(*store) == 20 * 1000);

    // And the cache carries on from the retry: the next batch adds its own.
    REQUIRE(apply(system, ledger, samples_op(20, 5)).ok());
    CHECK(stored_cpu(*store) == 25 * 1000);
    caf::anon_send_exit(ledger, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("a respawned ledger (passivation, restart) continues from the stored VM state") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  actor_config config;
  caf::actor_system system{config};
  auto ledger = actors::spawn_customer_ledger(system, "acme", store);
  REQUIRE(apply(system, ledger, start_op()).ok());
  REQUIRE(apply(system, ledger, samples_op(0, 10)).ok());
  caf::anon_send_exit(ledger, caf::exit_reason::user_shutdown);

  auto respawned = actors::spawn_customer_ledger(system, "acme", store);
  auto resent = apply(system, respawned, samples_op(5, 10));  // overlaps the first batch
  REQUIRE(resent.ok());
  CHECK(resent.value() == 5);
  CHECK(stored_cpu(*store) == 15 * 1000);
  caf::anon_send_exit(respawned, caf::exit_reason::user_shutdown);
}

TEST_CASE(
    "rollup totals written as Puts add up across groups, respawns and Merge-written buckets") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  // A bucket as earlier builds wrote it: a Merge operand.
  {
    storage::write_set writes;
    model::rollup_accumulator rollups;
    auto window = sample_window("acme", "eu", "vm-1", t0);
    window.cpu_time_nanos = 7;
    window.network_tx_bytes = 1;  // sample_window's is near 2^64: no two would add up
    REQUIRE(rollups.add(window).ok());
    writes.merge_rollups("acme", rollups);
    REQUIRE(commit_and_wait(*store, std::move(writes)).ok());
  }
  actor_config config;
  caf::actor_system system{config};
  auto append = [&](const actors::customer_actor& ledger, int64_t start, uint64_t cpu) {
    model::customer_part part;
    part.customer_id = "acme";
    part.meta = {"batch", "metald-1", "eu", t0, ""};
    auto window = sample_window("acme", "eu", "vm-1", start);
    window.cpu_time_nanos = cpu;
    window.network_tx_bytes = 1;
    part.windows.push_back(window);
    part.indices.push_back(0);
    caf::scoped_actor self{system};
    bool stored = false;
    self->request(ledger, std::chrono::seconds{10}, actors::append_atom::value, std::move(part))
        .receive(
            [&](std::vector<model::item_outcome>& outcomes) {
              stored = outcomes.at(0).status == model::item_status::accepted;
            },
            [&](caf::error& error) { FAIL_CHECK(actors::to_status(error).message()); });
    CHECK(stored);
  };
  auto ledger = actors::spawn_customer_ledger(system, "acme", store);
  append(ledger, t0 + minute, 100);
  append(ledger, t0 + 2 * minute, 1000);  // from the cached total
  caf::anon_send_exit(ledger, caf::exit_reason::user_shutdown);
  auto respawned = actors::spawn_customer_ledger(system, "acme", store);
  append(respawned, t0 + 3 * minute, 10'000);  // read again from the store
  CHECK(stored_cpu(*store) == 11'107);
  uint64_t month_windows = 0;
  REQUIRE(store
              ->scan_rollups("acme", model::granularity::month, 0, INT64_MAX,
                             [&](const model::rollup_id&, const model::rollup_value& value) {
                               month_windows += value.totals.window_count;
                               return true;
                             })
              .ok());
  CHECK(month_windows == 4);
  caf::anon_send_exit(respawned, caf::exit_reason::user_shutdown);
}

TEST_CASE("a window that would take a stored total past 2^127-1 is refused alone") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  const auto month = model::bucket_start(model::granularity::month, t0);
  // vm-1's month already holds network_tx_bytes 5 short of the ceiling.
  {
    storage::write_set writes;
    model::rollup_value nearly_full;
    nearly_full.totals.network_tx_bytes = model::kUsageSumMax - 5;
    nearly_full.totals.window_count = 1;
    writes.put_rollup("acme", {model::granularity::month, month, "eu", "vm-1"}, nearly_full);
    REQUIRE(commit_and_wait(*store, std::move(writes)).ok());
  }
  actor_config config;
  caf::actor_system system{config};
  auto ledger = actors::spawn_customer_ledger(system, "acme", store);
  auto window = [](std::string vm, int64_t start, uint64_t tx) {
    auto w = sample_window("acme", "eu", std::move(vm), start);
    w.network_tx_bytes = tx;
    return w;
  };
  model::customer_part part;
  part.customer_id = "acme";
  part.meta = {"batch", "metald-1", "eu", t0, ""};
  part.windows = {window("vm-1", t0, 6), window("vm-2", t0, 6), window("vm-1", t0 + minute, 5)};
  part.indices = {0, 1, 2};
  std::vector<model::item_outcome> outcomes;
  caf::scoped_actor self{system};
  self->request(ledger, std::chrono::seconds{10}, actors::append_atom::value, part)
      .receive([&](std::vector<model::item_outcome>& answer) { outcomes = std::move(answer); },
               [&](caf::error& error) { FAIL_CHECK(actors::to_status(error).message()); });
  REQUIRE(outcomes.size() == 3);
  CHECK(outcomes[0].status == model::item_status::rejected);
  CHECK(outcomes[0].reason == model::reject_reason::total_out_of_range);
  CHECK(outcomes[0].message.find("2^127-1") != std::string::npos);
  CHECK(outcomes[1].status == model::item_status::accepted);  // another VM's totals
  CHECK(outcomes[2].status == model::item_status::accepted);  // exactly reaches the ceiling
  model::usage_totals vm1_month;
  REQUIRE(store
              ->scan_rollups("acme", model::granularity::month, month, month + 1,
                             [&](const model::rollup_id& id, const model::rollup_value& value) {
                               if (id.vm_id == "vm-1") vm1_month = value.totals;
                               return true;
                             })
              .ok());
  CHECK(vm1_month.network_tx_bytes == model::kUsageSumMax);
  CHECK(vm1_month.window_count == 2);
  // The refused window was not stored: sent again, it is refused again, not a duplicate.
  part.windows = {window("vm-1", t0, 6)};
  part.indices = {0};
  self->request(ledger, std::chrono::seconds{10}, actors::append_atom::value, part)
      .receive([&](std::vector<model::item_outcome>& answer) { outcomes = std::move(answer); },
               [&](caf::error& error) { FAIL_CHECK(actors::to_status(error).message()); });
  REQUIRE(outcomes.size() == 1);
  CHECK(outcomes[0].reason == model::reject_reason::total_out_of_range);
  caf::anon_send_exit(ledger, caf::exit_reason::user_shutdown);
}
