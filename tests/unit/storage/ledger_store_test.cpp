#include "storage/ledger_store.hpp"

#include <doctest/doctest.h>

#include <atomic>

#include <algorithm>
#include <fstream>
#include <future>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "raw_rocksdb.hpp"
#include "storage/bytes.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"
#include "test_support.hpp"

using namespace billing;
using namespace billing::storage;
using namespace billing::storage::testing;

namespace {

write_set windows_of(const std::vector<model::usage_window>& windows) {
  write_set writes;
  for (const auto& window : windows) writes.put_window(window);
  return writes;
}

conflict_record conflict_for(const std::string& customer, const std::string& batch_id,
                             uint64_t seed) {
  conflict_record record;
  record.meta = {batch_id, "metald-1", "eu-west-1", t0 + static_cast<int64_t>(seed), ""};
  record.attempted = sample_window(customer, "eu-west-1", "vm-1", t0, seed);
  record.stored = sample_window(customer, "eu-west-1", "vm-1", t0, seed + 100);
  return record;
}

}  // namespace

TEST_CASE("a committed window is found by find_stored and by scan_windows") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  const auto window = sample_window("cust-1", "eu-west-1", "vm-1", t0);
  REQUIRE(commit_and_wait(*store, windows_of({window})).ok());

  auto found = store->find_stored({model::window_identity::of(window)});
  REQUIRE_MESSAGE(found.ok(), found.error().message());
  REQUIRE(found.value().size() == 1);
  REQUIRE(found.value()[0].has_value());
  const auto& stored = *found.value()[0];
  CHECK(model::window_identity::of(stored) == model::window_identity::of(window));
  // The dedup lookup reads the stored window itself, informational fields included.
  check_same_window(stored, window);

  auto scanned = scan_all_windows(*store, "cust-1", t0, t0 + 1);
  REQUIRE(scanned.size() == 1);
  check_same_window(scanned[0], window);
}

TEST_CASE("a window is one key: its windows key is the dedup index, nothing goes to dedup") {
  temp_dir dir;
  const auto options = options_for(dir);
  const auto window = sample_window("cust-1", "eu-west-1", "vm-1", t0);
  write_set writes;
  writes.put_window(window);
  CHECK(writes.mutation_count() == 1);
  {
    auto store = open_store(options);
    REQUIRE(commit_and_wait(*store, std::move(writes)).ok());
  }
  raw_rocksdb raw(options.data_dir);
  CHECK(raw.entries("dedup").empty());
  const auto stored = raw.entries("windows");
  REQUIRE(stored.size() == 1);
  auto key = keys::window_key(model::window_identity::of(window));
  REQUIRE(key.ok());
  CHECK(stored[0].first == key.value());
}

TEST_CASE("find_stored answers each identity in request order, nullopt when not stored") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  const auto a = sample_window("c", "r1", "vm-a", t0, 1);
  const auto b = sample_window("c", "r1", "vm-b", t0, 2);
  REQUIRE(commit_and_wait(*store, windows_of({a, b})).ok());

  auto other_end = model::window_identity::of(a);
  other_end.window_end_ns += 1;
  auto other_region = model::window_identity::of(a);
  other_region.region = "r2";
  auto other_customer = model::window_identity::of(a);
  other_customer.customer_id = "c2";
  auto found = store->find_stored({model::window_identity::of(b), other_end,
                                   model::window_identity::of(a), other_region, other_customer});
  REQUIRE(found.ok());
  REQUIRE(found.value().size() == 5);
  REQUIRE(found.value()[0].has_value());
  CHECK(found.value()[0]->same_billed_values(b));
  CHECK(found.value()[0]->vm_id == "vm-b");
  CHECK_FALSE(found.value()[1].has_value());
  REQUIRE(found.value()[2].has_value());
  CHECK(found.value()[2]->same_billed_values(a));
  CHECK_FALSE(found.value()[3].has_value());
  CHECK_FALSE(found.value()[4].has_value());

  auto none = store->find_stored({});
  REQUIRE(none.ok());
  CHECK(none.value().empty());
}

TEST_CASE("find_stored refuses an identity that cannot be a key") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  auto found = store->find_stored({{std::string(256, 'c'), "r", "v", 0, 1}});
  REQUIRE_FALSE(found.ok());
  CHECK(found.error().code() == status_code::invalid_argument);
}

TEST_CASE("scan_windows returns window_start in [from, to), ordered by start, region, vm") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  // Committed out of order; expected order is by start, then region, then vm.
  const auto late = sample_window("c", "r1", "vm-a", t0 + 2 * minute, 1);
  const auto at_to = sample_window("c", "r1", "vm-a", t0 + 3 * minute, 2);
  const auto r2 = sample_window("c", "r2", "vm-a", t0, 3);
  const auto r1_vm_b = sample_window("c", "r1", "vm-b", t0, 4);
  const auto r1_vm_a = sample_window("c", "r1", "vm-a", t0, 5);
  const auto before_from = sample_window("c", "r1", "vm-a", t0 - 1, 6);
  REQUIRE(commit_and_wait(*store, windows_of({late, at_to, r2})).ok());
  REQUIRE(commit_and_wait(*store, windows_of({r1_vm_b, r1_vm_a, before_from})).ok());

  auto scanned = scan_all_windows(*store, "c", t0, t0 + 3 * minute);
  REQUIRE(scanned.size() == 4);
  check_same_window(scanned[0], r1_vm_a);
  check_same_window(scanned[1], r1_vm_b);
  check_same_window(scanned[2], r2);
  check_same_window(scanned[3], late);

  CHECK(scan_all_windows(*store, "c", t0 + 3 * minute, t0 + 3 * minute + 1).size() == 1);
  CHECK(scan_all_windows(*store, "c", t0, t0).empty());
  CHECK(scan_all_windows(*store, "c", t0 + minute, t0).empty());
  CHECK(scan_all_windows(*store, "c", std::numeric_limits<int64_t>::min(),
                         std::numeric_limits<int64_t>::max())
            .size() == 6);
}

TEST_CASE("scan_windows orders windows before the epoch before later ones") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  const auto after = sample_window("c", "r", "v", 5, 1);
  const auto before = sample_window("c", "r", "v", -5 * minute, 2);
  REQUIRE(commit_and_wait(*store, windows_of({after, before})).ok());
  auto scanned = scan_all_windows(*store, "c", -10 * minute, 10 * minute);
  REQUIRE(scanned.size() == 2);
  CHECK(scanned[0].window_start_ns == before.window_start_ns);
  CHECK(scanned[1].window_start_ns == after.window_start_ns);
}

TEST_CASE("scans of customer a never see customer ab, b or the empty id") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  write_set writes;
  for (const char* customer : {"", "a", "ab", "b", "a\xff"}) {
    writes.put_window(sample_window(customer, "r", "v", t0));
    writes.put_conflict(conflict_for(customer, "batch", 1));
  }
  REQUIRE(commit_and_wait(*store, std::move(writes)).ok());

  auto windows = scan_all_windows(*store, "a", std::numeric_limits<int64_t>::min(),
                                  std::numeric_limits<int64_t>::max());
  REQUIRE(windows.size() == 1);
  CHECK(windows[0].customer_id == "a");
  auto conflicts = scan_all_conflicts(*store, "a");
  REQUIRE(conflicts.size() == 1);
  CHECK(conflicts[0].attempted.customer_id == "a");
  CHECK(scan_all_conflicts(*store, "a\xff").size() == 1);
  CHECK(scan_all_conflicts(*store, "").size() == 1);
  CHECK(scan_all_conflicts(*store, "zz").empty());
}

TEST_CASE("scans stop as soon as visit returns false") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  write_set writes;
  for (int i = 0; i < 5; ++i) {
    writes.put_window(sample_window("c", "r", "v", t0 + i * minute, i));
    writes.put_conflict(conflict_for("c", "batch", i));
  }
  REQUIRE(commit_and_wait(*store, std::move(writes)).ok());
  int windows_seen = 0;
  auto scanned = store->scan_windows("c", t0, t0 + 10 * minute,
                                     [&](const auto&) { return ++windows_seen < 2; });
  CHECK(scanned.ok());
  CHECK(windows_seen == 2);
  int conflicts_seen = 0;
  CHECK(store->scan_conflicts("c", [&](const auto&) { return ++conflicts_seen < 3; }).ok());
  CHECK(conflicts_seen == 3);
}

TEST_CASE("storing an identity again replaces its one entry instead of adding another") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  const auto window = sample_window("c", "r", "v", t0, 1);
  REQUIRE(commit_and_wait(*store, windows_of({window})).ok());
  REQUIRE(commit_and_wait(*store, windows_of({window, window})).ok());
  CHECK(scan_all_windows(*store, "c", t0, t0 + 1).size() == 1);
}

TEST_CASE("conflict records round trip through scan_conflicts, oldest first, per customer") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  const auto first = conflict_for("c", "batch-1", 1);
  const auto second = conflict_for("c", "batch-2", 2);
  const auto third = conflict_for("c", "batch-3", 3);
  write_set two;
  two.put_conflict(first);
  two.put_conflict(second);
  REQUIRE(commit_and_wait(*store, std::move(two)).ok());
  write_set one;
  one.put_conflict(third);
  one.put_conflict(conflict_for("other", "batch-x", 9));
  REQUIRE(commit_and_wait(*store, std::move(one)).ok());

  auto conflicts = scan_all_conflicts(*store, "c");
  const std::vector expected_order{first, second, third};
  REQUIRE(conflicts.size() == expected_order.size());
  for (size_t i = 0; i < expected_order.size(); ++i) {
    const auto& expected = expected_order[i];
    CHECK(conflicts[i].meta.batch_id == expected.meta.batch_id);
    CHECK(conflicts[i].meta.instance_id == expected.meta.instance_id);
    CHECK(conflicts[i].meta.region == expected.meta.region);
    CHECK(conflicts[i].meta.received_at_ns == expected.meta.received_at_ns);
    check_same_window(conflicts[i].attempted, expected.attempted);
    check_same_window(conflicts[i].stored, expected.stored);
  }
  // Conflicts are audit entries only: they never count as stored windows.
  CHECK(scan_all_windows(*store, "c", std::numeric_limits<int64_t>::min(),
                         std::numeric_limits<int64_t>::max())
            .empty());
}

TEST_CASE("a write_set with an id too long for a key fails alone and writes nothing") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  const auto fine = sample_window("c", "r", "vm-ok", t0, 1);
  auto too_long = sample_window("c", "r", std::string(300, 'v'), t0, 2);
  write_set refused;
  refused.put_window(sample_window("c", "r", "vm-first", t0, 3));  // fine on its own
  refused.put_window(too_long);
  CHECK(refused.encode_status().code() == status_code::invalid_argument);

  std::promise<status> refused_done;
  std::promise<status> fine_done;
  store->commit(std::move(refused), [&](status s) { refused_done.set_value(std::move(s)); });
  store->commit(windows_of({fine}), [&](status s) { fine_done.set_value(std::move(s)); });
  auto refused_outcome = refused_done.get_future().get();
  CHECK(refused_outcome.code() == status_code::invalid_argument);
  CHECK(refused_outcome.message().find("vm_id") != std::string::npos);
  CHECK(fine_done.get_future().get().ok());

  auto scanned = scan_all_windows(*store, "c", t0, t0 + 1);
  REQUIRE(scanned.size() == 1);
  CHECK(scanned[0].vm_id == "vm-ok");
}

TEST_CASE("an empty write_set completes ok without a RocksDB write") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  CHECK(commit_and_wait(*store, write_set{}).ok());
  CHECK(store->stats().commits_requested == 1);
  CHECK(store->stats().synced_writes == 0);
}

TEST_CASE("everything committed survives closing and reopening") {
  temp_dir dir;
  const auto options = options_for(dir);
  const auto window = sample_window("c", "r", "v", t0, 1);
  const auto before_restart = conflict_for("c", "batch-1", 1);
  {
    auto store = open_store(options);
    write_set writes = windows_of({window});
    writes.put_conflict(before_restart);
    REQUIRE(commit_and_wait(*store, std::move(writes)).ok());
  }
  {
    auto store = open_store(options);
    auto found = store->find_stored({model::window_identity::of(window)});
    REQUIRE(found.ok());
    REQUIRE(found.value()[0].has_value());
    CHECK(found.value()[0]->same_billed_values(window));
    auto scanned = scan_all_windows(*store, "c", t0, t0 + 1);
    REQUIRE(scanned.size() == 1);
    check_same_window(scanned[0], window);
    write_set after_restart;
    after_restart.put_conflict(conflict_for("c", "batch-2", 2));
    REQUIRE(commit_and_wait(*store, std::move(after_restart)).ok());
    auto conflicts = scan_all_conflicts(*store, "c");
    REQUIRE(conflicts.size() == 2);
    CHECK(conflicts[0].meta.batch_id == "batch-1");
    CHECK(conflicts[1].meta.batch_id == "batch-2");
  }
  // Audit sequences keep growing across restarts, so a key can never repeat
  // even if the clock does.
  raw_rocksdb raw(options.data_dir);
  auto audit = raw.entries("audit");
  REQUIRE(audit.size() == 2);
  auto sequence_of = [](const std::string& key) {
    bytes::reader in(std::string_view(key).substr(key.size() - 8));
    return *in.u64();
  };
  CHECK(sequence_of(audit[1].first) > sequence_of(audit[0].first));
}

TEST_CASE("a new ledger records the current schema version and all families") {
  temp_dir dir;
  const auto options = options_for(dir);
  open_store(options);
  raw_rocksdb raw(options.data_dir);
  for (auto name : family_names) {
    CAPTURE(name);
    CHECK(std::find(raw.family_names().begin(), raw.family_names().end(), name) !=
          raw.family_names().end());
  }
  auto meta = raw.entries("default");
  REQUIRE(meta.size() == 1);
  CHECK(meta[0].first == keys::schema_version_key);
  CHECK(meta[0].second == codec::encode_schema_version(codec::current_schema_version));
}

TEST_CASE("open refuses a schema version it does not know, with a clear status") {
  temp_dir dir;
  const auto options = options_for(dir);
  open_store(options);
  const auto newer = codec::current_schema_version + 1;

  SUBCASE("newer") {
    raw_rocksdb(options.data_dir)
        .put("default", keys::schema_version_key, codec::encode_schema_version(newer));
    auto opened = ledger_store::open(options);
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.error().code() == status_code::failed_precondition);
    CHECK(opened.error().message().find("newer") != std::string::npos);
    CHECK(opened.error().message().find(std::to_string(newer)) != std::string::npos);
  }
  SUBCASE("newer, with a column family this build does not know") {
    raw_rocksdb(options.data_dir, {"from_the_future"})
        .put("default", keys::schema_version_key, codec::encode_schema_version(newer));
    auto opened = ledger_store::open(options);
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.error().code() == status_code::failed_precondition);
    CHECK(opened.error().message().find("newer") != std::string::npos);
  }
  SUBCASE("older") {
    raw_rocksdb(options.data_dir)
        .put("default", keys::schema_version_key, codec::encode_schema_version(0));
    auto opened = ledger_store::open(options);
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.error().code() == status_code::failed_precondition);
  }
  SUBCASE("unreadable") {
    raw_rocksdb(options.data_dir).put("default", keys::schema_version_key, "v2");
    auto opened = ledger_store::open(options);
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.error().code() == status_code::data_loss);
  }
  // A refused open leaves nothing open: the directory can be opened again.
  raw_rocksdb(options.data_dir)
      .put("default", keys::schema_version_key,
           codec::encode_schema_version(codec::current_schema_version));
  CHECK(ledger_store::open(options).ok());
}

TEST_CASE("open refuses a ledger with data but no schema version") {
  temp_dir dir;
  const auto options = options_for(dir);
  {
    auto store = open_store(options);
    REQUIRE(commit_and_wait(*store, windows_of({sample_window("c", "r", "v", t0)})).ok());
  }
  raw_rocksdb(options.data_dir).remove("default", keys::schema_version_key);
  auto opened = ledger_store::open(options);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().code() == status_code::data_loss);
}

TEST_CASE("a failed open yields no store to commit to") {
  temp_dir dir;
  SUBCASE("the directory is in use by another store") {
    const auto options = options_for(dir);
    auto first = open_store(options);
    auto second = ledger_store::open(options);
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().code() == status_code::unavailable);
    CHECK(second.error().message().find(options.data_dir) != std::string::npos);
    CHECK_THROWS_AS((void)second.value(), std::bad_variant_access);
    // The store that holds the directory is unaffected.
    CHECK(commit_and_wait(*first, windows_of({sample_window("c", "r", "v", t0)})).ok());
  }
  SUBCASE("the data directory is a regular file") {
    auto options = options_for(dir);
    std::ofstream(options.data_dir) << "not a database";
    auto opened = ledger_store::open(options);
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.error().code() != status_code::ok);
    CHECK_THROWS_AS((void)opened.value(), std::bad_variant_access);
  }
}

TEST_CASE("stats report RocksDB's sizes, and every synced write is timed") {
  temp_dir dir;
  auto options = options_for(dir);
  std::atomic<int> timed{0};
  options.on_synced_write = [&timed](std::chrono::nanoseconds took) {
    CHECK(took.count() > 0);
    ++timed;
  };
  auto store = open_store(options);
  for (int i = 0; i < 3; ++i) {
    write_set writes;
    writes.put_window(sample_window("c", "r", "v", t0 + i * minute, uint64_t(i) + 1));
    REQUIRE(commit_and_wait(*store, std::move(writes)).ok());
  }
  const auto stats = store->stats();
  CHECK(stats.synced_writes == 3);
  CHECK(timed.load() == 3);
  CHECK(stats.memtable_bytes > 0);
  CHECK(stats.estimated_windows == 3);
}
