// The store's side of replicated ledgers (storage/replication_log.hpp): a
// lead commit logs its write_set as the shard's next entry in the same
// write and completes only through the sink; a follower applying the
// entries holds byte-identical records and an audit chain that verifies; a
// gap, a stale leader or a corrupt entry writes nothing.
#include <doctest/doctest.h>

#include <future>
#include <map>
#include <mutex>

#include "storage/keys.hpp"
#include "storage/replication_log.hpp"
#include "tests/unit/storage/test_support.hpp"

namespace billing::storage::testing {
namespace {

// The replication layer as far as the store sees it: leads the shards it is
// told to, keeps what the store hands over, completes waits when asked.
class recording_sink final : public replication_sink {
 public:
  bool leads(uint32_t shard, uint64_t epoch) const override {
    std::lock_guard lock(mutex_);
    auto found = led_.find(shard);
    return found != led_.end() && found->second == epoch;
  }
  void committed(std::vector<logged_entry> entries, std::vector<majority_wait> waits) override {
    std::lock_guard lock(mutex_);
    for (auto& entry : entries) entries_.push_back(std::move(entry));
    for (auto& wait : waits) waits_.push_back(std::move(wait));
  }
  void lead(uint32_t shard, uint64_t epoch) {
    std::lock_guard lock(mutex_);
    led_[shard] = epoch;
  }
  std::vector<logged_entry> entries() const {
    std::lock_guard lock(mutex_);
    return entries_;
  }
  // Completes every wait so far; answers their seqs.
  std::vector<uint64_t> complete_all() {
    std::vector<majority_wait> waits;
    {
      std::lock_guard lock(mutex_);
      waits.swap(waits_);
    }
    std::vector<uint64_t> seqs;
    for (auto& wait : waits) {
      seqs.push_back(wait.seq);
      wait.on_done(status::ok_status());
    }
    return seqs;
  }

 private:
  mutable std::mutex mutex_;
  std::map<uint32_t, uint64_t> led_;
  std::vector<logged_entry> entries_;
  std::vector<majority_wait> waits_;
};

// Every record of the replicated families, as (family, key, value).
std::vector<stored_record> replicated_records(const ledger_store& store) {
  std::vector<stored_record> records;
  for (const uint32_t family : replicated_families()) {
    REQUIRE(store
                .scan_range(family, "", std::nullopt,
                            [&](std::string_view key, std::string_view value) {
                              records.push_back({family, std::string(key), std::string(value)});
                              return true;
                            })
                .ok());
  }
  return records;
}

write_set lead_write(const std::string& customer, int64_t start, uint64_t epoch) {
  write_set writes;
  writes.put_window(sample_window(customer, "r", "vm-1", start, 7));
  writes.put_ingest_record({customer, {"batch", "metald-1", "r", start, "caller"}, 1, 0, 0});
  writes.replicate_as_leader(3, epoch);
  return writes;
}

TEST_CASE("mutations round-trip through the log codec; truncation is data_loss") {
  std::string body;
  uint32_t count = 0;
  replication_log::append_mutation(body, count, {windows_family, false, false, false, "k1", "v1"});
  replication_log::append_mutation(body, count, {rollups_family, true, false, false, "k2", "v2"});
  replication_log::append_mutation(body, count, {audit_family, false, false, true, "k3", "v3"});
  replication_log::append_mutation(body, count, {plans_family, false, true, false, "k4", ""});
  const std::string encoded = replication_log::finish_mutations(count, body);
  auto decoded = replication_log::decode_mutations(encoded);
  REQUIRE(decoded.ok());
  REQUIRE(decoded.value().size() == 4);
  CHECK(decoded.value()[1].merge);
  CHECK(decoded.value()[2].audit);
  CHECK(decoded.value()[3].erase);
  CHECK(decoded.value()[2].key == "k3");
  for (size_t cut = 0; cut < encoded.size(); ++cut) {
    auto truncated = replication_log::decode_mutations(encoded.substr(0, cut));
    REQUIRE_FALSE(truncated.ok());
    CHECK(truncated.error().code() == status_code::data_loss);
  }
  CHECK_FALSE(replication_log::decode_state("\x01short").ok());
  CHECK(replication_log::decode_state(replication_log::encode_state({4, 9})).value() ==
        log_position{4, 9});
}

TEST_CASE("a lead commit is logged in its own write and completes only when the sink says so") {
  temp_dir leader_dir;
  temp_dir follower_dir;
  auto leader = open_store(options_for(leader_dir));
  auto follower = open_store(options_for(follower_dir));
  auto sink = std::make_shared<recording_sink>();
  leader->set_replication_sink(sink);

  SUBCASE("not leading: refused, nothing written") {
    auto refused = commit_and_wait(*leader, lead_write("c", t0, 1));
    CHECK(refused.code() == status_code::unavailable);
    CHECK(replicated_records(*leader).empty());
    CHECK(leader->shard_position(3).value() == log_position{});
  }

  SUBCASE("leading: logged, waits, replays identically on a follower") {
    sink->lead(3, 2);
    std::promise<status> first_done;
    leader->commit(lead_write("c", t0, 2), [&](status s) { first_done.set_value(std::move(s)); });
    REQUIRE(commit_and_wait(*leader, write_set{}).ok());  // the committer has written it
    auto first = first_done.get_future();
    CHECK(first.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
    CHECK(sink->complete_all() == std::vector<uint64_t>{1});
    CHECK(first.get().ok());
    CHECK(leader->shard_position(3).value() == log_position{2, 1});

    std::promise<status> second_done;
    leader->commit(lead_write("c", t0 + minute, 2),
                   [&](status s) { second_done.set_value(std::move(s)); });
    // Nothing new to write still waits for the log as it is (entry 2).
    std::promise<status> empty_done;
    write_set nothing;
    nothing.replicate_as_leader(3, 2);
    leader->commit(std::move(nothing), [&](status s) { empty_done.set_value(std::move(s)); });
    REQUIRE(commit_and_wait(*leader, write_set{}).ok());
    CHECK(sink->complete_all() == std::vector<uint64_t>{2, 2});
    CHECK(second_done.get_future().get().ok());
    CHECK(empty_done.get_future().get().ok());

    auto entries = sink->entries();
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].entry.seq == 1);
    CHECK(entries[1].entry.epoch == 2);
    auto logged = leader->read_log(3, 1, 10, 1 << 20);
    REQUIRE(logged.ok());
    REQUIRE(logged.value().size() == 2);
    CHECK(logged.value()[1].mutations == entries[1].entry.mutations);

    SUBCASE("a follower applying them holds the same records and a chain that verifies") {
      write_set apply;
      apply.apply_as_follower(3, logged.value());
      REQUIRE(commit_and_wait(*follower, std::move(apply)).ok());
      const auto on_leader = replicated_records(*leader);
      const auto on_follower = replicated_records(*follower);
      REQUIRE(on_leader.size() == on_follower.size());
      for (size_t i = 0; i < on_leader.size(); ++i) {
        CHECK(on_leader[i].family == on_follower[i].family);
        CHECK(on_leader[i].key == on_follower[i].key);
        CHECK(on_leader[i].value == on_follower[i].value);
      }
      CHECK(follower->shard_position(3).value() == log_position{2, 2});
      auto chain = follower->verify_audit_chain();
      REQUIRE(chain.ok());
      CHECK(chain.value().intact);
      CHECK(chain.value().entries_verified == 2);
    }

    SUBCASE("a gap or an older epoch is refused and writes nothing") {
      write_set gap;
      gap.apply_as_follower(3, {logged.value()[1]});
      CHECK(commit_and_wait(*follower, std::move(gap)).code() == status_code::aborted);
      CHECK(replicated_records(*follower).empty());
      write_set first_only;
      first_only.apply_as_follower(3, {logged.value()[0]});
      REQUIRE(commit_and_wait(*follower, std::move(first_only)).ok());
      auto older = logged.value()[1];
      older.epoch = 1;
      write_set stale;
      stale.apply_as_follower(3, {older});
      CHECK(commit_and_wait(*follower, std::move(stale)).code() == status_code::aborted);
      CHECK(follower->shard_position(3).value() == log_position{2, 1});
    }

    SUBCASE("a corrupt entry is data_loss and writes nothing") {
      auto corrupt = logged.value()[0];
      corrupt.mutations.resize(corrupt.mutations.size() - 1);
      write_set bad;
      bad.apply_as_follower(3, {corrupt});
      CHECK(commit_and_wait(*follower, std::move(bad)).code() == status_code::data_loss);
      CHECK(follower->shard_position(3).value() == log_position{});
    }
  }
}

TEST_CASE("a shard's log keeps the configured number of entries; its position survives a reopen") {
  temp_dir dir;
  auto options = options_for(dir);
  options.replication_log_entries = 3;
  {
    auto store = open_store(options);
    auto sink = std::make_shared<recording_sink>();
    store->set_replication_sink(sink);
    sink->lead(3, 1);
    for (int i = 0; i < 5; ++i) {
      store->commit(lead_write("c", t0 + i * minute, 1), nullptr);
    }
    REQUIRE(commit_and_wait(*store, write_set{}).ok());
    auto kept = store->read_log(3, 1, 100, 1 << 20);
    REQUIRE(kept.ok());
    REQUIRE(kept.value().size() == 3);
    CHECK(kept.value().front().seq == 3);
    CHECK(kept.value().back().seq == 5);
  }
  auto reopened = open_store(options);
  CHECK(reopened->shard_position(3).value() == log_position{1, 5});
  CHECK(reopened->shard_position(4).value() == log_position{});
}

}  // namespace
}  // namespace billing::storage::testing
