// The table layout that keeps a large file's index out of the way of queries.
#include <doctest/doctest.h>

#include <vector>

#include "raw_rocksdb.hpp"
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
