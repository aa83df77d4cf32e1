// The query workers' reads on a real RocksDB: a billing-window query scans
// back only as far as the customer's longest window, and still finds a long
// window that started well before its range.
#include <doctest/doctest.h>

#include "../storage/test_support.hpp"
#include "actors/query_worker.hpp"
#include "model/calendar.hpp"

using namespace billing;
using namespace billing::storage::testing;

namespace {

void store_windows(storage::ledger_store& store, const std::vector<model::usage_window>& windows) {
  storage::write_set writes;
  model::rollup_accumulator rollups;
  for (const auto& w : windows) {
    writes.put_window(w);
    REQUIRE(rollups.add(w).ok());
  }
  writes.merge_rollups(windows.front().customer_id, rollups);
  REQUIRE(commit_and_wait(store, std::move(writes)).ok());
}

}  // namespace

TEST_CASE("a billing window finds a long window that started before it, and only what overlaps") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  const int64_t range_start = t0 + 120 * minute;
  auto long_window = sample_window("acme", "eu", "vm-long", range_start - 50 * minute);
  long_window.window_end_ns = range_start + 10 * minute;  // 60 minutes long
  auto before_only = sample_window("acme", "eu", "vm-short", range_start - 5 * minute);
  auto inside = sample_window("acme", "eu", "vm-short", range_start + minute);
  for (auto* w : {&long_window, &before_only, &inside}) w->network_tx_bytes = 1000;
  store_windows(*store, {long_window, before_only, inside});

  actors::query_settings settings;
  auto report = actors::billing_window(
      *store, {"acme", range_start, range_start + 30 * minute, false}, settings);
  REQUIRE(report.ok());
  REQUIRE(report->vms.size() == 2);
  CHECK(report->vms[0].vm_id == "vm-long");
  CHECK(report->vms[0].totals.vm_active_nanos == uint64_t(10 * minute));
  REQUIRE(report->vms[0].spans.size() == 1);
  CHECK(report->vms[0].spans[0].start_ns == range_start);
  CHECK(report->vms[1].vm_id == "vm-short");
  CHECK(report->vms[1].totals.window_count == 1);
  // vm-short's window before the range shows the gap at the range's start.
  REQUIRE(report->gaps.size() == 1);
  CHECK(report->gaps[0].vm_id == "vm-short");
  CHECK(report->gaps[0].start_ns == range_start);
  CHECK(report->gaps[0].end_ns == range_start + minute);
}

TEST_CASE("a billing window of a customer without usage is empty") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  auto report = actors::billing_window(*store, {"nobody", t0, t0 + minute, false}, {});
  REQUIRE(report.ok());
  CHECK(report->vms.empty());
  CHECK(report->gaps.empty());
}
