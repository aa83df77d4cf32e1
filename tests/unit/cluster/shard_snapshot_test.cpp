// A replica snapshot of one shard (cluster/replication/shard_data): the
// replica that installs it holds exactly the leader's records of the shard,
// keeps the other shards' records, retracts the audit entries of writes it
// stored as a deposed leader, and its audit chain still verifies.
#include <doctest/doctest.h>

#include "cluster/placement.hpp"
#include "cluster/replication/shard_data.hpp"
#include "storage/keys.hpp"
#include "storage/replication_log.hpp"
#include "tests/unit/storage/test_support.hpp"

namespace billing::cluster::replication {
namespace {

using storage::testing::minute;
using storage::testing::t0;

constexpr uint32_t kShards = 4;

// Customers "c0", "c1", ... until one falls in `shard` and one does not.
std::pair<std::string, std::string> customers_in_and_out(uint32_t shard) {
  std::string in;
  std::string out;
  for (int i = 0; in.empty() || out.empty(); ++i) {
    const std::string id = "c" + std::to_string(i);
    (shard_of(id, kShards) == shard ? in : out) = id;
  }
  return {in, out};
}

storage::write_set ingest(const std::string& customer, int64_t start, uint64_t seed) {
  storage::write_set writes;
  writes.put_window(storage::testing::sample_window(customer, "r", "vm-1", start, seed));
  writes.put_vm_state(customer, "vm-" + customer, model::vm_state{});
  writes.put_ingest_record({customer, {"batch", "metald", "r", start, "caller"}, 1, 0, 0});
  return writes;
}

std::vector<storage::stored_record> records_of(const storage::ledger_store& store,
                                               const shard_selector& selector) {
  std::vector<storage::stored_record> records;
  for (const uint32_t family : storage::replicated_families()) {
    REQUIRE(store
                .scan_range(family, "", std::nullopt,
                            [&](std::string_view key, std::string_view value) {
                              if (selector.contains(family, key, value)) {
                                records.push_back({family, std::string(key), std::string(value)});
                              }
                              return true;
                            })
                .ok());
  }
  return records;
}

bool same(const std::vector<storage::stored_record>& a,
          const std::vector<storage::stored_record>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].family != b[i].family || a[i].key != b[i].key || a[i].value != b[i].value) {
      return false;
    }
  }
  return true;
}

TEST_CASE("an installed snapshot makes a diverged replica's shard equal to the leader's") {
  storage::testing::temp_dir leader_dir;
  storage::testing::temp_dir replica_dir;
  auto leader = storage::testing::open_store(storage::testing::options_for(leader_dir));
  auto replica = storage::testing::open_store(storage::testing::options_for(replica_dir));
  const uint32_t shard = 1;
  const auto [in, out] = customers_in_and_out(shard);
  const shard_selector selector{shard, kShards, &shard_of};

  // Both hold the first write; the replica then stored one the leader never
  // got (as a deposed leader), and a customer of another shard.
  for (auto* store : {leader.get(), replica.get()}) {
    REQUIRE(storage::testing::commit_and_wait(*store, ingest(in, t0, 1)).ok());
  }
  REQUIRE(storage::testing::commit_and_wait(*replica, ingest(in, t0 + minute, 2)).ok());
  REQUIRE(storage::testing::commit_and_wait(*replica, ingest(out, t0, 3)).ok());
  REQUIRE(storage::testing::commit_and_wait(*leader, ingest(in, t0 + 2 * minute, 4)).ok());
  const auto other_shard = records_of(*replica, {shard_of(out, kShards), kShards, &shard_of});
  REQUIRE_FALSE(other_shard.empty());

  storage::log_position at;
  const auto unsynced = [&] {
    auto marker =
        replica->get(storage::replication_family, storage::replication_log::unsynced_key(shard));
    REQUIRE(marker.ok());
    return marker.value().has_value();
  };
  REQUIRE_FALSE(unsynced());
  REQUIRE(erase_shard(*replica, selector, 2).ok());
  CHECK(replica->shard_position(shard).value() == storage::log_position{});
  // Until the snapshot is in, the replica must not count toward a majority.
  CHECK(unsynced());
  REQUIRE(export_shard(
              *leader, selector, 64,
              [&](const storage::log_position& position) {
                at = position;
                return status::ok_status();
              },
              [&](std::vector<storage::stored_record>& chunk, bool) {
                return put_records(*replica, chunk);
              })
              .ok());
  REQUIRE(finish_install(*replica, selector, {7, 42}).ok());

  CHECK(same(records_of(*replica, selector), records_of(*leader, selector)));
  CHECK(same(records_of(*replica, {shard_of(out, kShards), kShards, &shard_of}), other_shard));
  CHECK(replica->shard_position(shard).value() == storage::log_position{7, 42});
  CHECK_FALSE(unsynced());
  auto chain = replica->verify_audit_chain();
  REQUIRE(chain.ok());
  CHECK_MESSAGE(chain.value().intact, chain.value().problem);
  // Its own three entries (two of them now retracted) and the leader's two,
  // linked into its own chain as they arrived.
  CHECK(chain.value().entries_verified == 5);
}

// Installs on `replica` the shard as `leader` holds it, at `at`.
void install(storage::ledger_store& replica, const storage::ledger_store& leader,
             const shard_selector& selector, storage::log_position at) {
  REQUIRE(erase_shard(replica, selector, 2).ok());
  REQUIRE(export_shard(
              leader, selector, 64,
              [](const storage::log_position&) { return status::ok_status(); },
              [&](std::vector<storage::stored_record>& chunk, bool) {
                return put_records(replica, chunk);
              })
              .ok());
  REQUIRE(finish_install(replica, selector, at).ok());
}

// One log entry writing `records` as they are (audit entries chained).
storage::log_entry entry_writing(const std::vector<storage::stored_record>& records, uint64_t epoch,
                                 uint64_t seq) {
  std::string body;
  uint32_t count = 0;
  for (const auto& record : records) {
    storage::replication_log::append_mutation(
        body, count,
        {record.family, false, false, record.family == storage::audit_family, record.key,
         record.value});
  }
  return {epoch, seq, storage::replication_log::finish_mutations(count, body)};
}

// The store's audit chain verifies, linking `entries` entries.
void expect_intact_chain(const storage::ledger_store& store, uint64_t entries) {
  auto chain = store.verify_audit_chain();
  REQUIRE(chain.ok());
  CHECK_MESSAGE(chain.value().intact, chain.value().problem);
  CHECK(chain.value().entries_verified == entries);
}

// One customer's write on a source store, and a replica to install it on.
struct one_customer_shard {
  explicit one_customer_shard(uint32_t shard_number)
      : source(storage::testing::open_store(storage::testing::options_for(source_dir))),
        replica(storage::testing::open_store(storage::testing::options_for(replica_dir))),
        shard(shard_number),
        customer(customers_in_and_out(shard_number).first),
        selector{shard_number, kShards, &shard_of} {
    REQUIRE(storage::testing::commit_and_wait(*source, ingest(customer, t0, 1)).ok());
    held = records_of(*source, selector);
  }
  storage::testing::temp_dir source_dir;
  storage::testing::temp_dir replica_dir;
  std::shared_ptr<storage::ledger_store> source;
  std::shared_ptr<storage::ledger_store> replica;
  uint32_t shard;
  std::string customer;
  shard_selector selector;
  std::vector<storage::stored_record> held;
};

// A replica that held an entry it then retracted (a leader without it sent
// its snapshot) may get the entry back: from a later leader that held it, in
// its snapshot or in its log. The entry is linked in the replica's chain
// already; linking it again would leave the chain linking one stored entry
// twice, which no longer verifies.
TEST_CASE(
    "an audit entry retracted by one install and received again is restored, not linked twice") {
  one_customer_shard fixture(2);
  auto& [source_dir, replica_dir, source, replica, shard, customer, selector, held] = fixture;
  storage::testing::temp_dir empty_dir;
  auto without = storage::testing::open_store(storage::testing::options_for(empty_dir));

  install(*replica, *source, selector, {1, 1});
  REQUIRE(same(records_of(*replica, selector), held));
  install(*replica, *without, selector, {2, 0});
  CHECK(records_of(*replica, selector).empty());
  expect_intact_chain(*replica, 1);

  const auto expect_restored = [&] {
    CHECK(same(records_of(*replica, selector), held));
    expect_intact_chain(*replica, 1);
  };
  SUBCASE("in a later leader's snapshot") {
    install(*replica, *source, selector, {3, 1});
    expect_restored();
  }
  SUBCASE("in a later leader's log") {
    storage::write_set apply;
    apply.apply_as_follower(shard, {entry_writing(held, 3, 1)});
    REQUIRE(storage::testing::commit_and_wait(*replica, std::move(apply)).ok());
    CHECK(replica->shard_position(shard).value() == storage::log_position{3, 1});
    expect_restored();
  }

  SUBCASE("an entry that comes back changed under its key is refused, and nothing written") {
    auto changed = held;
    for (auto& record : changed) {
      if (record.family == storage::audit_family) record.value += "x";
    }
    storage::write_set apply;
    apply.apply_as_follower(shard, {entry_writing(changed, 3, 1)});
    CHECK(storage::testing::commit_and_wait(*replica, std::move(apply)).code() ==
          status_code::data_loss);
    CHECK(records_of(*replica, selector).empty());
    expect_intact_chain(*replica, 1);
  }
}

// A replica stopped during an install (erased, position reset, not
// finished) holds part of the shard. The replicator then takes only a
// snapshot for it; should the shard's log still be replayed onto it from the
// start, the audit entries it holds are not linked a second time, and they
// count as confirmed for the install that follows.
TEST_CASE(
    "an unfinished install is marked; a log replayed onto its partial shard links nothing twice") {
  one_customer_shard fixture(3);
  auto& [source_dir, replica_dir, source, replica, shard, customer, selector, held] = fixture;
  const auto replay = [&] {
    storage::write_set apply;
    apply.apply_as_follower(shard, {entry_writing(held, 1, 1)});
    return storage::testing::commit_and_wait(*replica, std::move(apply));
  };
  const auto installing = [&] {
    auto marker =
        replica->get(storage::replication_family, storage::replication_log::installing_key(shard));
    REQUIRE(marker.ok());
    return marker.value().has_value();
  };
  REQUIRE(replay().ok());
  CHECK_FALSE(installing());

  REQUIRE(erase_shard(*replica, selector, 2).ok());
  CHECK(installing());
  CHECK(replica->shard_position(shard).value() == storage::log_position{});
  REQUIRE(replay().ok());
  CHECK(same(records_of(*replica, selector), held));
  expect_intact_chain(*replica, 1);

  // The install finishing now keeps the entry the log confirmed.
  REQUIRE(finish_install(*replica, selector, {1, 1}).ok());
  CHECK_FALSE(installing());
  CHECK(same(records_of(*replica, selector), held));
  expect_intact_chain(*replica, 1);
}

// A node just started may hear a leader's snapshot before it has read the
// shard count from the placement. With a count of 0 every customer maps to
// shard 0: the install of any other shard erased none of it (the writes the
// replica held as a deposed leader stayed, found by e2e.replication g), and
// a snapshot exported from such a node held none of it.
TEST_CASE("without the shard count nothing is erased, exported or installed") {
  one_customer_shard fixture(1);
  auto& [source_dir, replica_dir, source, replica, shard, customer, selector, held] = fixture;
  install(*replica, *source, selector, {1, 1});
  REQUIRE(storage::testing::commit_and_wait(*replica, ingest(customer, t0 + minute, 2)).ok());
  const auto before = records_of(*replica, selector);
  REQUIRE(before.size() > held.size());
  const shard_selector unknown{shard, 0, &shard_of};

  CHECK(erase_shard(*replica, unknown, 2).code() == status_code::unavailable);
  CHECK(finish_install(*replica, unknown, {2, 1}).code() == status_code::unavailable);
  CHECK(same(records_of(*replica, selector), before));
  CHECK_FALSE(
      replica->get(storage::replication_family, storage::replication_log::installing_key(shard))
          .value()
          .has_value());
  CHECK(replica->shard_position(shard).value() == storage::log_position{1, 1});

  int calls = 0;
  CHECK(export_shard(
            *source, unknown, 64,
            [&](const storage::log_position&) {
              ++calls;
              return status::ok_status();
            },
            [&](std::vector<storage::stored_record>&, bool) {
              ++calls;
              return status::ok_status();
            })
            .code() == status_code::unavailable);
  CHECK(calls == 0);
  CHECK(erase_shard(*replica, {kShards, kShards, &shard_of}).code() ==
        status_code::invalid_argument);
}

TEST_CASE("records name their customer; the default plan's belongs to no shard") {
  CHECK(customer_of(storage::windows_family,
                    std::string("\x03"
                                "abc",
                                4) +
                        "rest",
                    "") == "abc");
  CHECK_FALSE(customer_of(storage::plans_family, std::string("\x00", 1) + "rest", ""));
  CHECK_FALSE(customer_of(storage::windows_family,
                          "\x09"
                          "ab",
                          ""));
  CHECK_FALSE(customer_of(storage::windows_family, "", ""));
}

}  // namespace
}  // namespace billing::cluster::replication
