// Plans, finalized invoices and financial audit entries in a real RocksDB.
#include "storage/billing_records.hpp"

#include <doctest/doctest.h>

#include "test_support.hpp"

using namespace billing;
using namespace billing::storage;
using namespace billing::storage::testing;

namespace {

model::plan_version version_at(int64_t from, int64_t cpu_picos) {
  model::plan_version version;
  version.effective_from_ns = from;
  version.prices[0].tiers = {{model::int128{1} << 80, model::rate{cpu_picos}}, {0, model::rate{1}}};
  version.region_multipliers["eu"] = 1'250'000;
  version.monthly_base_fee.nanos = 30'000'000'000;
  version.monthly_minimum.nanos = 7;
  return version;
}

model::invoice sample_invoice(std::string customer, int64_t start) {
  model::invoice bill;
  bill.customer_id = std::move(customer);
  bill.period_start_ns = start;
  bill.period_end_ns = start + 30 * model::kNanosPerDay;
  bill.active_from_ns = start + 5;
  model::invoice_item usage;
  usage.which = model::dimension::vm_time;
  usage.region = "eu";
  usage.quantity = model::int128{1} << 70;
  usage.price.picos = -3;  // any bit pattern must survive
  usage.amount.nanos = 123;
  bill.lines.push_back(usage);
  model::add_adjustment(bill, start - 31 * model::kNanosPerDay, model::money{-5});
  bill.vms.push_back({"vm-1", "eu", 42, start + 5, start + 47});
  bill.finalized = true;
  bill.number = 9;
  bill.finalized_at_ns = start + 40 * model::kNanosPerDay;
  seal_invoice(bill);
  return bill;
}

}  // namespace

TEST_CASE("plan versions round-trip and the default plan yields to a customer's own") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  write_set writes;
  writes.put_plan_version("", version_at(100, 5));
  writes.put_plan_version("", version_at(300, 6));
  writes.put_plan_version("acme", version_at(200, 7));
  writes.put_plan_version("acme", version_at(400, 8));
  REQUIRE(commit_and_wait(*store, std::move(writes)).ok());

  auto defaults = load_plan_versions(*store, "");
  REQUIRE(defaults.ok());
  REQUIRE(defaults.value().size() == 2);
  CHECK(defaults.value()[0].prices[0].tiers[0].up_to_base_units == model::int128{1} << 80);
  CHECK(defaults.value()[0].region_multipliers.at("eu") == 1'250'000);
  CHECK(defaults.value()[0].monthly_base_fee.nanos == 30'000'000'000);

  // acme: the default's version at 100 (before its own first at 200), then its own.
  auto acme = effective_plan(*store, "acme");
  REQUIRE(acme.ok());
  REQUIRE(acme.value().size() == 3);
  CHECK(acme.value()[0].effective_from_ns == 100);
  CHECK(acme.value()[1].effective_from_ns == 200);
  CHECK(acme.value()[2].effective_from_ns == 400);
  auto other = effective_plan(*store, "other");
  REQUIRE(other.ok());
  CHECK(other.value().size() == 2);
  CHECK(decode_plan_version("\x01").error().code() == status_code::data_loss);
}

TEST_CASE("a finalized invoice reads back bit-identical; a flipped byte is data_loss") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  const auto bill = sample_invoice("acme", t0);
  CHECK(bill.content_hash.size() == 64);
  write_set writes;
  writes.put_invoice(bill);
  writes.put_invoice(sample_invoice("acme", t0 + 40 * model::kNanosPerDay));
  writes.put_invoice(sample_invoice("acmex", t0));
  writes.put_invoice_counters(10, t0);
  REQUIRE(commit_and_wait(*store, std::move(writes)).ok());

  auto loaded = load_invoice(*store, "acme", t0);
  REQUIRE(loaded.ok());
  REQUIRE(loaded.value().has_value());
  CHECK(*loaded.value() == bill);
  auto listed = list_invoices(*store, "acme");
  REQUIRE(listed.ok());
  CHECK(listed.value().size() == 2);
  CHECK(load_invoice(*store, "acme", t0 + 1).value() == std::nullopt);
  auto counters = load_invoice_counters(*store);
  REQUIRE(counters.ok());
  CHECK(counters.value().next_number == 10);
  CHECK(counters.value().finalized_through_ns == t0);

  std::string stored = encode_invoice_content(bill);
  stored += std::string(32, '\0');
  CHECK(decode_invoice(stored).error().code() == status_code::data_loss);
}

TEST_CASE("financial audit entries sit beside conflicts without disturbing them") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  write_set writes;
  writes.put_audit("acme", "plan.set", "admin", "cpu=0.0425");
  conflict_record conflict;
  conflict.attempted = sample_window("acme", "r", "v", t0, 1);
  conflict.stored = sample_window("acme", "r", "v", t0, 2);
  writes.put_conflict(conflict);
  writes.put_audit("acme", "invoice.finalize", "admin", "number=1");
  writes.put_audit("", "plan.set", "admin", "default");
  REQUIRE(commit_and_wait(*store, std::move(writes)).ok());

  std::vector<audit_entry> entries;
  REQUIRE(scan_audit_entries(*store, "acme", [&](const audit_entry& entry) {
            entries.push_back(entry);
            return true;
          }).ok());
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].kind == "plan.set");
  CHECK(entries[0].who == "admin");
  CHECK(entries[1].what == "number=1");
  CHECK(scan_all_conflicts(*store, "acme").size() == 1);
}

TEST_CASE("customers with usage in a range are found with one seek each") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  model::rollup_accumulator early;
  REQUIRE(early.add(sample_window("a", "r", "v", t0)).ok());
  model::rollup_accumulator late;
  REQUIRE(late.add(sample_window("b", "r", "v", t0 + 200 * minute)).ok());
  write_set writes;
  writes.merge_rollups("a", early);
  writes.merge_rollups("b", late);
  REQUIRE(commit_and_wait(*store, std::move(writes)).ok());
  auto found = customers_with_usage(*store, t0 - 60 * minute, t0 + 60 * minute);
  REQUIRE(found.ok());
  CHECK(found.value() == std::vector<std::string>{"a"});
  found = customers_with_usage(*store, t0 - 60 * minute, t0 + 300 * minute);
  CHECK(found.value() == std::vector<std::string>{"a", "b"});
}
