// Shared fixtures of the storage tests: a fresh temp directory per test and
// sample windows with every field set to a distinct value.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <future>
#include <limits>
#include <string>
#include <vector>

#include "model/usage_window.hpp"
#include "storage/ledger_store.hpp"

namespace billing::storage::testing {

inline constexpr int64_t minute = 60'000'000'000;
inline constexpr int64_t t0 = 1'700'000'000'000'000'000;  // 2023-11-14T22:13:20Z

// A directory that exists for the lifetime of the object, then is removed.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ledger-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string db_path() const { return (path_ / "db").string(); }

 private:
  std::filesystem::path path_;
};

inline store_options options_for(const temp_dir& dir) {
  store_options options;
  options.data_dir = dir.db_path();
  options.block_cache_bytes = uint64_t{8} << 20;
  options.write_buffer_bytes = uint64_t{4} << 20;
  return options;
}

inline std::shared_ptr<ledger_store> open_store(const store_options& options) {
  auto opened = ledger_store::open(options);
  REQUIRE_MESSAGE(opened.ok(), opened.error().message());
  return opened.value();
}

// `seed` makes every field of different windows differ.
inline model::usage_window sample_window(std::string customer, std::string region, std::string vm,
                                         int64_t start_ns, uint64_t seed = 1) {
  model::usage_window w;
  w.customer_id = std::move(customer);
  w.region = std::move(region);
  w.vm_id = std::move(vm);
  w.window_start_ns = start_ns;
  w.window_end_ns = start_ns + 60'000'000'000;
  w.sampled_at_ns = w.window_end_ns + 17;
  w.cpu_time_nanos = seed * 1000 + 1;
  w.cpu_utilization_pct = 12.5 + static_cast<double>(seed);
  w.cpu_cores_used = 0.1 * static_cast<double>(seed);
  w.memory_bytes_used = seed * 1000 + 2;
  w.memory_bytes_peak = seed * 1000 + 3;
  w.memory_bytes_seconds = seed * 1000 + 4;
  w.disk_read_bytes = seed * 1000 + 5;
  w.disk_write_bytes = seed * 1000 + 6;
  w.disk_read_ops = seed * 1000 + 7;
  w.disk_write_ops = seed * 1000 + 8;
  w.network_rx_bytes = seed * 1000 + 9;
  w.network_tx_bytes = std::numeric_limits<uint64_t>::max() - seed;
  return w;
}

// Every field, compared exactly (doubles by value; tests of NaN use bits).
inline void check_same_window(const model::usage_window& actual,
                              const model::usage_window& expected) {
  CHECK(model::window_identity::of(actual) == model::window_identity::of(expected));
  CHECK(actual.sampled_at_ns == expected.sampled_at_ns);
  CHECK(actual.cpu_utilization_pct == expected.cpu_utilization_pct);
  CHECK(actual.cpu_cores_used == expected.cpu_cores_used);
  CHECK(actual.billed_values() == expected.billed_values());
}

// Commits and waits for the outcome, as an actor would see it in on_done.
inline status commit_and_wait(ledger_store& store, write_set writes) {
  return store.commit_and_wait(std::move(writes));
}

inline std::vector<model::usage_window> scan_all_windows(const ledger_store& store,
                                                         const std::string& customer,
                                                         int64_t from_ns, int64_t to_ns) {
  std::vector<model::usage_window> found;
  auto scanned = store.scan_windows(customer, from_ns, to_ns, [&](const auto& window) {
    found.push_back(window);
    return true;
  });
  REQUIRE_MESSAGE(scanned.ok(), scanned.message());
  return found;
}

inline std::vector<conflict_record> scan_all_conflicts(const ledger_store& store,
                                                       const std::string& customer) {
  std::vector<conflict_record> found;
  auto scanned = store.scan_conflicts(customer, [&](const auto& record) {
    found.push_back(record);
    return true;
  });
  REQUIRE_MESSAGE(scanned.ok(), scanned.message());
  return found;
}

}  // namespace billing::storage::testing
