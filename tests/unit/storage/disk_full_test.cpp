// A full data volume on a real RocksDB (ENOSPC injected through the file
// system): writes pause with resource_exhausted while reads go on, and resume
// by themselves once space is back, with every acknowledged write there once.
// The end-to-end test on a real tmpfs is tests/e2e/disk_full.test.mjs.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "raw_rocksdb.hpp"
#include "storage/ledger_store.hpp"
#include "storage/write_pause.hpp"
#include "test_support.hpp"

using namespace billing;
using namespace billing::storage;
using namespace billing::storage::testing;
using namespace std::chrono_literals;

namespace {

store_options full_disk_options(const temp_dir& dir, wal_fault fault,
                                const std::shared_ptr<std::atomic<bool>>& full) {
  auto options = options_for(dir);
  options.env = faulty_env(fault, full);
  options.resume.min_free_bytes = 0;  // the injected fault frees no real bytes
  options.resume.first_interval = 20ms;
  options.resume.longest_interval = 40ms;
  return options;
}

write_set audited_window(const std::string& customer, int index) {
  write_set writes;
  writes.put_window(sample_window(customer, "r", "vm", t0 + index * minute, index));
  writes.put_ingest_record({customer, {"b", "i", "r", t0, "t"}, 1, 0, 0});
  return writes;
}

// Waits (bounded) until the store takes writes again on its own.
bool becomes_writable(const ledger_store& store) {
  for (int i = 0; i < 500 && !store.health().writable; ++i) std::this_thread::sleep_for(10ms);
  return store.health().writable;
}

size_t stored_count(const ledger_store& store) {
  return scan_all_windows(store, "c", t0, t0 + 100 * minute).size();
}

}  // namespace

TEST_CASE("a full disk pauses writes with resource_exhausted, reads go on, writes resume alone") {
  temp_dir dir;
  auto full = std::make_shared<std::atomic<bool>>(false);
  auto store = open_store(full_disk_options(dir, wal_fault::no_space, full));
  REQUIRE(commit_and_wait(*store, audited_window("c", 0)).ok());
  CHECK(store->health().writable);

  full->store(true);
  const status failed = commit_and_wait(*store, audited_window("c", 1));
  CHECK(failed.code() == status_code::resource_exhausted);
  CHECK(failed.message().find("data volume is full") != std::string::npos);
  const auto paused = store->health();
  CHECK_FALSE(paused.writable);
  CHECK(paused.disk_full);
  CHECK(paused.cause.find("injected: no space left on device") != std::string::npos);
  // Reads are served from what is stored, also after the failed write.
  CHECK(stored_count(*store) == 1);
  const auto synced = store->stats().synced_writes;
  CHECK(commit_and_wait(*store, audited_window("c", 2)).code() == status_code::resource_exhausted);
  CHECK(store->stats().synced_writes == synced);  // refused without touching RocksDB

  full->store(false);
  REQUIRE(becomes_writable(*store));  // no write needed to notice
  REQUIRE(commit_and_wait(*store, audited_window("c", 1)).ok());
  CHECK(stored_count(*store) == 2);
  auto chain = store->verify_audit_chain();
  REQUIRE(chain.ok());
  CHECK_MESSAGE(chain.value().intact, chain.value().problem);
  CHECK(chain.value().entries_verified == 2);
}

TEST_CASE("a flush that hits a full disk pauses writes until space is back") {
  temp_dir dir;
  auto full = std::make_shared<std::atomic<bool>>(false);
  auto store = open_store(full_disk_options(dir, wal_fault::no_space_in_sst, full));
  REQUIRE(commit_and_wait(*store, audited_window("c", 0)).ok());

  full->store(true);
  // Compacting flushes the memtable first: that SST cannot be written.
  CHECK_FALSE(store->apply_retention().ok());
  const status refused = commit_and_wait(*store, audited_window("c", 1));
  CHECK(refused.code() == status_code::resource_exhausted);
  CHECK(store->health().disk_full);
  CHECK(stored_count(*store) == 1);

  full->store(false);
  REQUIRE(becomes_writable(*store));
  REQUIRE(commit_and_wait(*store, audited_window("c", 1)).ok());
  REQUIRE(store->apply_retention().ok());  // flushes and compacts now
  CHECK(stored_count(*store) == 2);
}

TEST_CASE("a store opened on a full disk serves reads and takes writes once space is freed") {
  temp_dir dir;
  auto full = std::make_shared<std::atomic<bool>>(false);
  const auto options = full_disk_options(dir, wal_fault::no_space, full);
  REQUIRE(commit_and_wait(*open_store(options), audited_window("c", 0)).ok());

  full->store(true);  // opening for writes writes a MANIFEST, an OPTIONS file
  auto store = open_store(options);
  CHECK_FALSE(store->health().writable);
  CHECK(store->health().disk_full);
  CHECK(stored_count(*store) == 1);
  CHECK(commit_and_wait(*store, audited_window("c", 1)).code() == status_code::resource_exhausted);

  full->store(false);
  REQUIRE(becomes_writable(*store));
  REQUIRE(commit_and_wait(*store, audited_window("c", 1)).ok());
  CHECK(stored_count(*store) == 2);
}

TEST_CASE("RocksDB's info log stays off the data volume") {
  temp_dir dir;
  auto options = options_for(dir);
  const auto has_log = [](const std::filesystem::path& where) {
    for (const auto& entry : std::filesystem::directory_iterator(where)) {
      if (entry.path().filename().string().find("LOG") != std::string::npos) return true;
    }
    return false;
  };
  {
    auto store = open_store(options);
    CHECK_FALSE(has_log(options.data_dir));  // its lines go to billingd's log
  }
  options.rocksdb_log_dir = (dir.path() / "rocksdb-log").string();
  std::filesystem::create_directories(options.rocksdb_log_dir);
  {
    auto store = open_store(options);
    CHECK(has_log(options.rocksdb_log_dir));
  }
  CHECK_FALSE(has_log(options.data_dir));
}

TEST_CASE("a disk-full pause waits for free space; other errors retry with a growing back-off") {
  using clock = write_pause::clock;
  resume_policy policy;
  policy.min_free_bytes = 1000;
  policy.first_interval = 100ms;
  policy.longest_interval = 300ms;
  write_pause pause(policy);
  const auto now = clock::now();
  CHECK(pause.refusal().ok());
  CHECK_FALSE(pause.due(now + 1h, UINT64_MAX));  // not paused

  pause.pause({status_code::resource_exhausted, "No space left on device"}, now);
  CHECK(pause.refusal().code() == status_code::resource_exhausted);
  CHECK(pause.refusal().message().find("No space left on device") != std::string::npos);
  CHECK(pause.health().disk_full);
  CHECK_FALSE(pause.due(now + 50ms, UINT64_MAX));  // too early
  CHECK_FALSE(pause.due(now + 150ms, 999));        // too little space
  CHECK(pause.due(now + 150ms, 1000));

  pause.attempt_failed({status_code::unavailable, "IO error: EIO"}, now);
  CHECK(pause.refusal().code() == status_code::unavailable);
  CHECK_FALSE(pause.health().disk_full);
  CHECK_FALSE(pause.due(now + 150ms, 0));  // the interval doubled to 200 ms
  CHECK(pause.due(now + 250ms, 0));        // not a full disk: free space does not matter
  pause.attempt_failed({status_code::unavailable, "IO error: EIO"}, now);
  CHECK(pause.due(now + 300ms, 0));  // capped at the longest interval

  pause.resume(now + 300ms);
  CHECK(pause.health().writable);
  CHECK(pause.refusal().ok());

  // Failing again soon after resuming (a compaction needing more room than was
  // freed) keeps the long interval instead of retrying every 100 ms.
  pause.pause({status_code::resource_exhausted, "No space left on device"}, now + 310ms);
  CHECK_FALSE(pause.due(now + 500ms, UINT64_MAX));
  CHECK(pause.due(now + 610ms, UINT64_MAX));
  pause.resume(now + 610ms);
  // Long after the last resume, a new pause starts from the first interval.
  pause.pause({status_code::resource_exhausted, "No space left on device"}, now + 1h);
  CHECK(pause.due(now + 1h + 100ms, UINT64_MAX));
}
