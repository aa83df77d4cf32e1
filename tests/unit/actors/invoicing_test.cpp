// Plans, finalization and adjustments over a real ledger, with a fixed clock.
#include "actors/invoicing.hpp"

#include <doctest/doctest.h>

#include "storage/billing_records.hpp"
#include "tests/unit/storage/test_support.hpp"

using namespace billing;
using namespace billing::storage::testing;

namespace {

constexpr int64_t hour = model::kNanosPerHour;
constexpr int64_t day = model::kNanosPerDay;
constexpr int64_t july = int64_t{1'782'864'000} * model::kNanosPerSecond;  // 2026-07-01
constexpr int64_t august = july + 31 * day;
constexpr int64_t september = august + 31 * day;
constexpr int64_t now = september + 40 * day;

// One busy core for an hour starting at `start`, as 60 one-minute windows.
void store_busy_hour(storage::ledger_store& store, int64_t start) {
  storage::write_set writes;
  model::rollup_accumulator rollups;
  for (int i = 0; i < 60; ++i) {
    model::usage_window window;
    window.customer_id = "acme";
    window.region = "a";
    window.vm_id = "vm-1";
    window.window_start_ns = start + i * minute;
    window.window_end_ns = start + (i + 1) * minute;
    window.cpu_time_nanos = 60'000'000'000;
    writes.put_window(window);
    REQUIRE(rollups.add(window).ok());
  }
  writes.merge_rollups("acme", rollups);
  REQUIRE(commit_and_wait(store, std::move(writes)).ok());
}

model::plan_version cpu_plan(int64_t from, model::int128 picos_per_core_hour) {
  model::plan_version version;
  version.effective_from_ns = from;
  version.prices[static_cast<size_t>(model::dimension::cpu)].tiers = {
      {0, model::rate{picos_per_core_hour}}};
  return version;
}

std::vector<std::string> audit_kinds(const storage::ledger_store& store, const std::string& id) {
  std::vector<std::string> kinds;
  REQUIRE(storage::scan_audit_entries(store, id, [&](const storage::audit_entry& entry) {
            kinds.push_back(entry.kind);
            return true;
          }).ok());
  return kinds;
}

}  // namespace

TEST_CASE("each late difference is adjusted exactly once, and finalized periods stay closed") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  actors::invoicing billing_engine(store, {hour, [] { return now; }});
  // 2 per core-hour.
  REQUIRE(billing_engine.set_plan("", cpu_plan(july - 365 * day, 2'000'000'000'000), "ops").ok());
  store_busy_hour(*store, july + 9 * day);

  auto first = billing_engine.finalize(july, {"acme"}, "ops");
  REQUIRE(first.ok());
  REQUIRE(first.value().size() == 1);
  CHECK(first.value()[0].total.nanos == 2'000'000'000);
  CHECK(first.value()[0].number == 1);

  store_busy_hour(*store, july + 20 * day);  // late: +2
  auto second = billing_engine.finalize(august, {"acme"}, "ops");
  REQUIRE(second.ok());
  CHECK(second.value()[0].number == 2);
  CHECK(second.value()[0].adjustments.nanos == 2'000'000'000);

  store_busy_hour(*store, july + 25 * day);  // later still: only this +2 is new
  auto draft = billing_engine.get_invoice("acme", september, "ops");
  REQUIRE(draft.ok());
  REQUIRE(draft.value().lines.size() == 1);
  CHECK(draft.value().lines[0].adjusted_period_start_ns == july);
  CHECK(draft.value().total.nanos == 2'000'000'000);

  // July is untouched and cannot be re-priced or re-finalized differently.
  auto july_again = billing_engine.get_invoice("acme", july, "ops");
  REQUIRE(july_again.ok());
  CHECK(july_again.value() == first.value()[0]);
  CHECK(billing_engine.set_plan("acme", cpu_plan(august, 1), "ops").error().code() ==
        status_code::failed_precondition);
  CHECK(billing_engine.set_plan("", cpu_plan(august + day, 1), "ops").error().code() ==
        status_code::failed_precondition);
  CHECK(billing_engine.set_plan("acme", cpu_plan(september, 1), "ops").ok());
  // Setting a stored version again is a no-op, even inside a finalized period.
  CHECK(billing_engine.set_plan("", cpu_plan(july - 365 * day, 2'000'000'000'000), "ops").ok());
  CHECK(billing_engine.finalize(september + 30 * day, {"acme"}, "ops").error().code() ==
        status_code::failed_precondition);  // October has not ended at `now`

  CHECK(audit_kinds(*store, "") == std::vector<std::string>{"plan.set"});
  CHECK(audit_kinds(*store, "acme") ==
        std::vector<std::string>{"invoice.finalize", "invoice.finalize", "invoice.adjustment",
                                 "invoice.draft", "plan.set"});
}

TEST_CASE("a period cannot be finalized after a later one") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  actors::invoicing billing_engine(store, {hour, [] { return now; }});
  REQUIRE(billing_engine.set_plan("", cpu_plan(0, 1), "ops").ok());
  store_busy_hour(*store, july + day);
  REQUIRE(billing_engine.finalize(august, {"acme"}, "ops").ok());
  CHECK(billing_engine.finalize(july, {"acme"}, "ops").error().code() ==
        status_code::failed_precondition);
  auto all = billing_engine.finalize(september, {}, "ops");  // nobody used September
  REQUIRE(all.ok());
  CHECK(all.value().empty());
}

TEST_CASE("cluster-wide numbers: finalization takes one block of numbers for its new invoices") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  std::vector<uint64_t> asked;
  bool available = true;
  uint64_t next = 1000;  // the cluster's counter (etcd in billingd)
  actors::invoicing_settings settings{hour, [] { return now; }};
  settings.take_numbers = [&](uint64_t count) -> result<uint64_t> {
    asked.push_back(count);
    if (!available) return status{status_code::unavailable, "etcd unreachable"};
    const uint64_t first = next;
    next += count;
    return first;
  };
  actors::invoicing billing_engine(store, settings);
  REQUIRE(billing_engine.set_plan("", cpu_plan(july - 365 * day, 2'000'000'000'000), "ops").ok());
  store_busy_hour(*store, july + 9 * day);
  store_busy_hour(*store, august + 9 * day);

  // No numbers to be had: nothing is finalized.
  available = false;
  auto refused = billing_engine.finalize(july, {"acme"}, "ops");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code() == status_code::unavailable);
  CHECK(storage::list_invoices(*store, "acme").value().empty());

  available = true;
  auto july_bills = billing_engine.finalize(july, {"acme"}, "ops");
  REQUIRE(july_bills.ok());
  CHECK(july_bills.value()[0].number == 1000);
  // Finalizing again takes no number: the invoice exists.
  asked.clear();
  REQUIRE(billing_engine.finalize(july, {"acme"}, "ops").ok());
  CHECK(asked.empty());
  auto august_bills = billing_engine.finalize(august, {"acme"}, "ops");
  REQUIRE(august_bills.ok());
  CHECK(asked == std::vector<uint64_t>{1});
  CHECK(august_bills.value()[0].number == 1001);
}
