// Reading raw windows without decoding them (scan_stored_windows), and the
// table layout that keeps a large file's index out of the way of queries.
#include <doctest/doctest.h>

#include <vector>

#include "raw_rocksdb.hpp"
#include "storage/keys.hpp"
#include "storage/ledger_store.hpp"
#include "test_support.hpp"

using namespace billing;
using namespace billing::storage;
using namespace billing::storage::testing;

namespace {

status commit_windows(ledger_store& store, const std::vector<model::usage_window>& windows) {
  write_set writes;
  for (const auto& window : windows) writes.put_window(window);
  return commit_and_wait(store, std::move(writes));
}

}  // namespace

TEST_CASE("scan_stored_windows sees what scan_windows decodes, value decoded only on demand") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  std::vector<model::usage_window> windows;
  for (int i = 0; i < 12; ++i) {
    windows.push_back(sample_window("acme", i % 2 ? "eu" : "us", "vm-" + std::to_string(i % 3),
                                    t0 + (i / 3) * minute, uint64_t(i + 1)));
  }
  REQUIRE(commit_windows(*store, windows).ok());
  REQUIRE(commit_windows(*store, {sample_window("acm", "eu", "vm-0", t0, 99)}).ok());

  const auto decoded = scan_all_windows(*store, "acme", t0, t0 + 4 * minute);
  std::vector<model::usage_window> seen;
  auto scanned =
      store->scan_stored_windows("acme", t0, t0 + 4 * minute, [&](const stored_window& stored) {
        auto window = stored.decode();
        REQUIRE(window.ok());
        CHECK(model::window_identity_view::of(window.value()) == stored.identity);
        auto gauge = stored.memory_bytes_used();
        REQUIRE(gauge.ok());
        CHECK(gauge.value() == window->memory_bytes_used);
        seen.push_back(window.value());
        return true;
      });
  REQUIRE(scanned.ok());
  REQUIRE(seen.size() == decoded.size());
  REQUIRE(seen.size() == windows.size());
  for (size_t i = 0; i < seen.size(); ++i) check_same_window(seen[i], decoded[i]);
}

TEST_CASE("a damaged windows value fails the bounds-only scan as it fails decoding") {
  temp_dir dir;
  const auto options = options_for(dir);
  const auto window = sample_window("acme", "eu", "vm", t0);
  {
    auto store = open_store(options);
    REQUIRE(commit_windows(*store, {window}).ok());
  }
  auto key = keys::window_key(model::window_identity::of(window));
  REQUIRE(key.ok());
  raw_rocksdb(options.data_dir).put("windows", key.value(), std::string("\x01truncated", 10));
  auto store = open_store(options);
  auto scanned = store->scan_stored_windows("acme", t0, t0 + minute, [&](const stored_window& s) {
    auto gauge = s.memory_bytes_used();
    REQUIRE_FALSE(gauge.ok());
    CHECK(gauge.error().code() == status_code::data_loss);
    return false;
  });
  CHECK(scanned.ok());
  auto decoded = store->scan_windows("acme", t0, t0 + minute, [](auto&) { return true; });
  CHECK(decoded.code() == status_code::data_loss);
}

TEST_CASE("table files have partitioned indexes: a large file's index is never one big block") {
  temp_dir dir;
  const auto options = options_for(dir);
  {
    auto store = open_store(options);
    std::vector<model::usage_window> windows;
    for (int i = 0; i < 2000; ++i) {
      windows.push_back(sample_window("acme", "eu", "vm-" + std::to_string(i % 50),
                                      t0 + (i / 50) * minute, uint64_t(i + 1)));
    }
    REQUIRE(commit_windows(*store, windows).ok());
    // Compacts (and first flushes) the windows family with the store's options.
    REQUIRE(store->apply_retention().ok());
  }
  raw_rocksdb raw(options.data_dir);
  rocksdb::TablePropertiesCollection tables;
  REQUIRE(raw.db().GetPropertiesOfAllTables(raw.family("windows"), &tables).ok());
  REQUIRE_FALSE(tables.empty());
  for (const auto& [file, properties] : tables) {
    INFO(file);
    CHECK(properties->index_partitions > 0);  // 0: one binary-search index block
    CHECK(properties->top_level_index_size > 0);
  }
}
