#include "storage/audit_chain.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <latch>
#include <string>
#include <vector>

#include "raw_rocksdb.hpp"
#include "storage/bytes.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "storage/ledger_store.hpp"
#include "test_support.hpp"

using namespace billing;
using namespace billing::storage;
using namespace billing::storage::testing;

namespace {

ingest_record record_for(const std::string& customer, const std::string& batch_id, uint32_t n) {
  return {customer, {batch_id, "metald-7", "eu-west-1", t0 + n, "metald-token"}, n, n + 1, n + 2};
}

// Commits, per customer, one window and one ingest record, and for the first
// customer a conflict: `rounds` times. Returns the number of audit entries.
uint64_t fill(ledger_store& store, int rounds, int first_seed = 0) {
  uint64_t audit_entries = 0;
  for (int round = first_seed; round < first_seed + rounds; ++round) {
    for (const std::string customer : {"acme", "globex"}) {
      write_set writes;
      writes.put_window(sample_window(customer, "eu-west-1", "vm", t0 + round * minute, round));
      writes.put_ingest_record(record_for(customer, "b-" + std::to_string(round), round));
      ++audit_entries;
      if (customer == "acme") {
        writes.put_conflict({{"b", "i", "eu-west-1", t0, ""},
                             sample_window(customer, "eu-west-1", "vm", t0, round + 100),
                             sample_window(customer, "eu-west-1", "vm", t0, round)});
        ++audit_entries;
      }
      REQUIRE(commit_and_wait(store, std::move(writes)).ok());
    }
  }
  return audit_entries;
}

audit_chain_report verify(const store_options& options) {
  auto report = open_store(options)->verify_audit_chain();
  REQUIRE_MESSAGE(report.ok(), report.error().message());
  return report.value();
}

// One chained entry as its link records it, read raw from a closed store.
struct chained_entry {
  uint64_t sequence = 0;
  audit_chain::digest hash{};
  std::string audit_key;
  std::string link_key;  // of the link record that holds it (with its batch's other entries)
};

std::vector<chained_entry> chained_entries(raw_rocksdb& raw) {
  std::vector<chained_entry> chained;
  for (auto& [key, value] : raw.entries("default")) {
    if (!key.starts_with(audit_chain::link_prefix)) continue;
    auto first = audit_chain::link_sequence(key);
    auto link = audit_chain::decode_link(value);
    REQUIRE(first);
    REQUIRE(link.ok());
    for (size_t i = 0; i < link.value().entries.size(); ++i) {
      const auto& entry = link.value().entries[i];
      chained.push_back({*first + i, entry.hash, entry.audit_key, key});
    }
  }
  return chained;
}

// The n-th chained entry (0-based).
chained_entry nth_entry(raw_rocksdb& raw, size_t n) {
  auto chained = chained_entries(raw);
  REQUIRE(n < chained.size());
  return chained[n];
}

// Someone changes a stored audit entry behind the store's back (e.g. lowers
// the accepted count of an ingest record or edits a conflict).
void modify_entry(raw_rocksdb& raw, const std::string& audit_key) {
  std::string value;
  for (auto& [key, stored] : raw.entries("audit")) {
    if (key == audit_key) value = stored;
  }
  REQUIRE_FALSE(value.empty());
  value.back() = static_cast<char>(value.back() ^ 1);
  raw.put("audit", audit_key, value);
}

// Removes a link record and every entry it chains.
void remove_link_and_entries(raw_rocksdb& raw, const std::string& link_key) {
  for (const auto& entry : chained_entries(raw)) {
    if (entry.link_key == link_key) raw.remove("audit", entry.audit_key);
  }
  raw.remove("default", link_key);
}

// Fills a new ledger with `rounds` of fill(), lets `damage` change it behind
// the store's back (told how many audit entries there are), and verifies.
audit_chain_report damaged_chain(
    int rounds, const std::function<void(raw_rocksdb&, uint64_t entries)>& damage) {
  temp_dir dir;
  const auto options = options_for(dir);
  const uint64_t entries = fill(*open_store(options), rounds);
  {
    raw_rocksdb raw(options.data_dir);
    damage(raw, entries);
  }
  return verify(options);
}

}  // namespace

TEST_CASE("ingest records are stored per part and read back; conflicts stay readable") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  fill(*store, 2);
  std::vector<ingest_record> found;
  REQUIRE(store
              ->scan_ingest_records("acme",
                                    [&](const ingest_record& r) {
                                      found.push_back(r);
                                      return true;
                                    })
              .ok());
  REQUIRE(found.size() == 2);
  CHECK(found[1].customer_id == "acme");
  CHECK(found[1].meta.batch_id == "b-1");
  CHECK(found[1].meta.instance_id == "metald-7");
  CHECK(found[1].meta.region == "eu-west-1");
  CHECK(found[1].meta.caller == "metald-token");
  CHECK(found[1].accepted == 1);
  CHECK(found[1].duplicate == 2);
  CHECK(found[1].rejected == 3);
  CHECK(scan_all_conflicts(*store, "acme").size() == 2);
  CHECK(scan_all_conflicts(*store, "globex").empty());
}

TEST_CASE("every audit entry is chained, and the chain survives restarts") {
  temp_dir dir;
  const auto options = options_for(dir);
  CHECK(verify(options).intact);  // an empty chain is intact
  CHECK(verify(options).entries_verified == 0);
  uint64_t entries = fill(*open_store(options), 3);
  const auto first = verify(options);
  CHECK_MESSAGE(first.intact, first.problem);
  CHECK(first.entries_verified == entries);
  CHECK(first.head_hash_hex.size() == 64);
  entries += fill(*open_store(options), 2, 10);  // a restart in between
  const auto second = verify(options);
  CHECK_MESSAGE(second.intact, second.problem);
  CHECK(second.entries_verified == entries);
  CHECK(second.head_sequence > first.head_sequence);
  CHECK(second.head_hash_hex != first.head_hash_hex);
}

TEST_CASE("concurrent commits of many customers form one unbroken chain") {
  temp_dir dir;
  const auto options = options_for(dir);
  {
    auto store = open_store(options);
    constexpr int commits = 200;
    std::latch done(commits);
    std::atomic<int> failures{0};
    for (int i = 0; i < commits; ++i) {
      write_set writes;
      writes.put_ingest_record(record_for("c" + std::to_string(i % 17), "b", i));
      store->commit(std::move(writes), [&](status result) {
        if (!result.ok()) ++failures;
        done.count_down();
      });
    }
    done.wait();
    CHECK(failures.load() == 0);
  }
  const auto report = verify(options);
  CHECK_MESSAGE(report.intact, report.problem);
  CHECK(report.entries_verified == 200);
}

TEST_CASE("a modified audit entry breaks the chain at that entry") {
  uint64_t sequence = 0;
  const auto report = damaged_chain(3, [&](raw_rocksdb& raw, uint64_t) {
    const auto entry = nth_entry(raw, 2);
    sequence = entry.sequence;
    modify_entry(raw, entry.audit_key);
  });
  CHECK_FALSE(report.intact);
  CHECK(report.first_bad_sequence == sequence);
  CHECK(report.problem.find("audit entry " + std::to_string(sequence)) != std::string::npos);
  CHECK(report.problem.find("customer '") != std::string::npos);
  CHECK(report.problem.find("was modified") != std::string::npos);
}

TEST_CASE("a removed, an inserted or a truncated entry is detected") {
  SUBCASE("removed entry") {
    uint64_t sequence = 0;
    const auto report = damaged_chain(2, [&](raw_rocksdb& raw, uint64_t) {
      const auto entry = nth_entry(raw, 1);
      sequence = entry.sequence;
      raw.remove("audit", entry.audit_key);
    });
    CHECK_FALSE(report.intact);
    CHECK(report.first_bad_sequence == sequence);
    CHECK(report.problem.find("is missing") != std::string::npos);
  }
  SUBCASE("removed entries and their link") {
    const auto report = damaged_chain(2, [](raw_rocksdb& raw, uint64_t) {
      remove_link_and_entries(raw, nth_entry(raw, 0).link_key);
    });
    CHECK_FALSE(report.intact);
    CHECK(report.problem.find("does not follow") != std::string::npos);
  }
  SUBCASE("entry inserted outside the chain") {
    const auto report = damaged_chain(1, [](raw_rocksdb& raw, uint64_t) {
      auto key = keys::audit_key_without_sequence("acme", t0);
      REQUIRE(key.ok());
      keys::append_audit_sequence(*key, 1);
      raw.put("audit", *key, codec::encode_ingest_record(record_for("acme", "forged", 9)));
    });
    CHECK_FALSE(report.intact);
    CHECK(report.problem.find("outside the chain") != std::string::npos);
  }
  SUBCASE("last entries removed with their links") {
    const auto report = damaged_chain(2, [](raw_rocksdb& raw, uint64_t entries) {
      remove_link_and_entries(raw, nth_entry(raw, entries - 1).link_key);
    });
    CHECK_FALSE(report.intact);
    CHECK(report.problem.find("its head records") != std::string::npos);
  }
}

TEST_CASE("one link record chains every entry of a commit, in consecutive sequences") {
  temp_dir dir;
  const auto options = options_for(dir);
  {
    write_set writes;
    for (const std::string customer : {"acme", "globex", "initech"}) {
      writes.put_ingest_record(record_for(customer, "b-1", 1));
    }
    REQUIRE(commit_and_wait(*open_store(options), std::move(writes)).ok());
  }
  {
    raw_rocksdb raw(options.data_dir);
    const auto chained = chained_entries(raw);
    REQUIRE(chained.size() == 3);
    for (size_t i = 1; i < chained.size(); ++i) {
      CHECK(chained[i].link_key == chained[0].link_key);
      CHECK(chained[i].sequence == chained[0].sequence + i);
    }
  }
  const auto report = verify(options);
  CHECK_MESSAGE(report.intact, report.problem);
  CHECK(report.entries_verified == 3);
}

TEST_CASE("a modified entry inside a link of several is named, not its link's first") {
  uint64_t first = 0;
  uint64_t modified = 0;
  const auto report = damaged_chain(1, [&](raw_rocksdb& raw, uint64_t) {
    // acme's commit chains its ingest record and its conflict in one link.
    const auto chained = chained_entries(raw);
    REQUIRE(chained[1].link_key == chained[0].link_key);
    first = chained[0].sequence;
    modified = chained[1].sequence;
    modify_entry(raw, chained[1].audit_key);
  });
  CHECK_FALSE(report.intact);
  CHECK(modified != first);
  CHECK(report.first_bad_sequence == modified);
  CHECK(report.problem.find("was modified") != std::string::npos);
}

// Rewrites every link as one format-1 link per entry, as stores written
// before links were grouped hold them (the hashes are the same).
void to_single_entry_links(raw_rocksdb& raw) {
  const auto chained = chained_entries(raw);
  for (const auto& entry : chained) raw.remove("default", entry.link_key);
  audit_chain::digest prev{};
  for (const auto& entry : chained) {
    std::string old_format;
    bytes::append_u8(old_format, audit_chain::single_entry_link_format);
    old_format.append(reinterpret_cast<const char*>(prev.data()), prev.size());
    old_format.append(reinterpret_cast<const char*>(entry.hash.data()), entry.hash.size());
    old_format.append(entry.audit_key);
    raw.put("default", audit_chain::link_key(entry.sequence), old_format);
    prev = entry.hash;
  }
}

TEST_CASE("a chain of one-entry links (format 1) verifies, grows and detects damage") {
  temp_dir dir;
  const auto options = options_for(dir);
  uint64_t entries = fill(*open_store(options), 2);
  size_t links_before = 0;
  {
    raw_rocksdb raw(options.data_dir);
    links_before = raw.entries("default").size();
    to_single_entry_links(raw);
    // acme's commits chained two entries per link: now one link each.
    REQUIRE(raw.entries("default").size() == links_before + 2);
  }
  const auto old_chain = verify(options);
  CHECK_MESSAGE(old_chain.intact, old_chain.problem);
  CHECK(old_chain.entries_verified == entries);
  entries += fill(*open_store(options), 1, 10);
  const auto grown = verify(options);
  CHECK_MESSAGE(grown.intact, grown.problem);
  CHECK(grown.entries_verified == entries);
  uint64_t modified = 0;
  {
    raw_rocksdb raw(options.data_dir);
    const auto entry = nth_entry(raw, 1);
    modified = entry.sequence;
    modify_entry(raw, entry.audit_key);
  }
  const auto damaged = verify(options);
  CHECK_FALSE(damaged.intact);
  CHECK(damaged.first_bad_sequence == modified);
}
