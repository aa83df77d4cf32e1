#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "storage/ledger_store.hpp"
#include "test_support.hpp"

using namespace billing;
using namespace billing::storage;
using namespace billing::storage::testing;

namespace {

write_set windows(const std::string& customer, int first, int count) {
  write_set writes;
  for (int i = first; i < first + count; ++i) {
    writes.put_window(sample_window(customer, "r", "vm", t0 + i * minute, i));
  }
  return writes;
}

}  // namespace

TEST_CASE("a backup holds every commit made before it, and restores into an empty directory") {
  temp_dir dir;
  const std::string backups = (dir.path() / "backups").string();
  const std::string restored_dir = (dir.path() / "restored").string();
  {
    auto store = open_store(options_for(dir));
    REQUIRE(commit_and_wait(*store, windows("acme", 0, 50)).ok());
    auto backup = store->create_backup(backups);
    REQUIRE_MESSAGE(backup.ok(), backup.error().message());
    CHECK(backup.value().backup_id == 1);
    CHECK(backup.value().file_count > 0);
    // Committed after the backup: must not be in it.
    REQUIRE(commit_and_wait(*store, windows("acme", 50, 10)).ok());
    CHECK(scan_all_windows(*store, "acme", INT64_MIN, INT64_MAX).size() == 60);
  }
  auto restored = restore_latest(backups, restored_dir);
  REQUIRE_MESSAGE(restored.ok(), restored.error().message());
  CHECK(restored.value().backup_id == 1);
  store_options options;
  options.data_dir = restored_dir;
  auto reopened = open_store(options);
  const auto found = scan_all_windows(*reopened, "acme", INT64_MIN, INT64_MAX);
  REQUIRE(found.size() == 50);
  check_same_window(found.back(), sample_window("acme", "r", "vm", t0 + 49 * minute, 49));
  // The dedup index came along: a re-send is recognised as stored.
  auto stored = reopened->find_stored({model::window_identity{"acme", "r", "vm", t0, t0 + minute}});
  REQUIRE(stored.ok());
  CHECK(stored.value().front().has_value());
}

TEST_CASE("restore refuses to overwrite and reports a missing backup") {
  temp_dir dir;
  const std::string backups = (dir.path() / "backups").string();
  auto missing = restore_latest(backups, (dir.path() / "new").string());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code() == status_code::not_found);

  {
    auto store = open_store(options_for(dir));
    REQUIRE(commit_and_wait(*store, windows("acme", 0, 3)).ok());
    REQUIRE(store->create_backup(backups).ok());
    auto second = store->create_backup(backups);
    REQUIRE(second.ok());
    CHECK(second.value().backup_id == 2);
  }
  const auto occupied = dir.path() / "occupied";
  std::filesystem::create_directories(occupied);
  std::ofstream(occupied / "keep-me") << "data";
  auto refused = restore_latest(backups, occupied.string());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code() == status_code::failed_precondition);
  CHECK(std::filesystem::exists(occupied / "keep-me"));
}
