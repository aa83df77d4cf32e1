// The storage side of a shard hand-over: listing the customers stored here,
// exporting the records copied verbatim, and deleting one customer's keys
// without touching a customer whose id extends it.
#include <doctest/doctest.h>

#include "storage/keys.hpp"
#include "tests/unit/storage/test_support.hpp"

namespace billing::storage::testing {
namespace {

size_t windows_of(ledger_store& store, const std::string& customer) {
  size_t count = 0;
  REQUIRE(store
              .scan_windows(customer, std::numeric_limits<int64_t>::min(),
                            std::numeric_limits<int64_t>::max(),
                            [&](model::usage_window&) {
                              ++count;
                              return true;
                            })
              .ok());
  return count;
}

TEST_CASE("customers are listed once each; one customer's keys are deleted, its neighbours kept") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  write_set writes;
  for (const char* customer : {"a", "ab", "b"}) {
    writes.put_window(sample_window(customer, "r", "vm-1", t0, 1));
    writes.put_window(sample_window(customer, "r", "vm-1", t0 + minute, 2));
  }
  model::vm_state state;
  writes.put_vm_state("a", "vm-m", state);
  REQUIRE(commit_and_wait(*store, std::move(writes)).ok());

  auto listed = store->list_customers();
  REQUIRE(listed.ok());
  CHECK(listed.value() == std::vector<std::string>{"a", "ab", "b"});

  auto records = store->export_customer_records("a");
  REQUIRE(records.ok());
  // The VM state and its index entry travel; windows do not (they are re-ingested).
  REQUIRE(records.value().size() == 2);
  CHECK(records.value()[0].family == vm_state_family);
  CHECK(records.value()[1].family == vm_index_family);
  CHECK(records.value()[1].key == keys::vm_index_key("vm-m").value());

  // One key per commit: the windows take more than one.
  REQUIRE(store->erase_customer("a", {windows_family, dedup_family, vm_state_family}, 1).ok());
  CHECK(windows_of(*store, "a") == 0);
  CHECK(windows_of(*store, "ab") == 2);
  CHECK(windows_of(*store, "b") == 2);
  CHECK(store->list_customers().value() == std::vector<std::string>{"ab", "b"});
  // The dedup index went with the windows: a re-sent window is new again.
  auto found =
      store->find_stored({model::window_identity::of(sample_window("a", "r", "vm-1", t0))});
  REQUIRE(found.ok());
  CHECK(!found.value()[0].has_value());
}

TEST_CASE("a copied record is stored exactly as it was") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  write_set writes;
  writes.put_record({plans_family, "\x01z-key", "opaque value"});
  REQUIRE(commit_and_wait(*store, std::move(writes)).ok());
  auto value = store->get(plans_family, "\x01z-key");
  REQUIRE(value.ok());
  CHECK(value.value() == std::optional<std::string>{"opaque value"});
}

}  // namespace
}  // namespace billing::storage::testing
