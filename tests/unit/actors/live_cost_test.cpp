// The customer ledger's live cost to date on a real RocksDB: every update's
// month_to_date_cost is the usage subtotal of this month's draft invoice at
// that point, across tiers, a region multiplier and plan changes made by
// invoicing (another writer) while subscribers stream.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include "../storage/test_support.hpp"
#include "actors/customer_ledger.hpp"
#include "actors/errors.hpp"
#include "actors/invoicing.hpp"
#include "actors/messages.hpp"
#include "model/calendar.hpp"

using namespace billing;
using namespace billing::storage::testing;

namespace {

constexpr std::chrono::seconds wait{10};
constexpr int64_t minute = 60 * model::kNanosPerSecond;

struct actor_config : caf::actor_system_config {
  actor_config() { actors::add_message_types(*this); }
};

// This month's windows: minutes before now, so that they are always in the
// month the ledger tracks (unless the test runs in a month's first minutes).
const int64_t minute_ago = model::unix_now_ns() / minute * minute - minute;
const int64_t month_start = model::bucket_start(model::granularity::month, minute_ago);

model::plan_version plan(std::string_view cpu_price) {
  model::plan_version version;
  version.effective_from_ns = month_start;
  auto& cpu = version.prices[static_cast<size_t>(model::dimension::cpu)].tiers;
  cpu = {{minute, model::parse_rate("0.5").value()}, {0, model::parse_rate(cpu_price).value()}};
  version.region_multipliers["eu"] = 1'250'000;
  return version;
}

void append(caf::actor_system& system, const actors::customer_actor& ledger,
            const std::string& region, int minutes_before, uint64_t cpu) {
  model::customer_part part;
  part.customer_id = "acme";
  part.meta = {"batch", "metald-1", region, model::unix_now_ns(), ""};
  auto window = sample_window("acme", region, "vm-" + region, minute_ago - minutes_before * minute);
  window.cpu_time_nanos = cpu;
  window.network_tx_bytes = 1;  // sample_window sets nearly 2^64
  part.windows.push_back(window);
  part.indices.push_back(0);
  caf::scoped_actor self{system};
  self->request(ledger, wait, actors::append_atom::value, std::move(part))
      .receive(
          [&](std::vector<model::item_outcome>& outcomes) {
            CHECK(outcomes.at(0).status == model::item_status::accepted);
          },
          [&](caf::error& error) { FAIL_CHECK(actors::to_status(error).message()); });
}

model::usage_update subscribe(caf::scoped_actor& self, const actors::customer_actor& ledger) {
  model::usage_update snapshot;
  self->request(ledger, wait, actors::subscribe_atom::value,
                caf::actor_cast<actors::subscriber_actor>(self))
      .receive([&](model::usage_update& update) { snapshot = std::move(update); },
               [&](caf::error& error) { FAIL_CHECK(actors::to_status(error).message()); });
  return snapshot;
}

model::usage_update next_update(caf::scoped_actor& self) {
  model::usage_update got;
  self->receive([&](actors::update_atom, model::usage_update& update) { got = std::move(update); },
                caf::after(wait) >> [] { FAIL_CHECK("no update"); });
  return got;
}

std::string draft_usage_subtotal(actors::invoicing& invoicing) {
  auto bill = invoicing.get_invoice("acme", month_start, "test");
  REQUIRE(bill.ok());
  return model::format_money(bill.value().usage_subtotal);
}

}  // namespace

TEST_CASE("live cost to date equals the draft's usage subtotal, through plan changes") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  actors::invoicing invoicing(store, {});
  actor_config config;
  caf::actor_system system{config};
  auto ledger = actors::spawn_customer_ledger(system, "acme", store);
  caf::scoped_actor first{system};

  // No plan: no cost, not zero.
  CHECK(subscribe(first, ledger).month_to_date_cost.empty());
  append(system, ledger, "us", 5, 30 * model::kNanosPerSecond);
  CHECK(next_update(first).month_to_date_cost.empty());

  // A plan appears: the next update is priced under it, from what is stored.
  REQUIRE(invoicing.set_plan("acme", plan("0.1"), "test").ok());
  append(system, ledger, "eu", 4, 60 * model::kNanosPerSecond);
  // Regions in name order: eu's 60 s fill tier 1 (0.5/h × 1.25 = 0.0104166667
  // → 0.010416667), us's 30 s are tier 2 (0.1/h: 0.000833333): 0.01125.
  auto priced = next_update(first);
  CHECK(priced.month_to_date_cost == "0.01125");
  CHECK(priced.month_to_date_cost == draft_usage_subtotal(invoicing));

  // Incremental updates stay equal to the draft.
  for (int i = 0; i < 4; ++i) {
    append(system, ledger, i % 2 ? "eu" : "us", 3 - i, (7 + i) * model::kNanosPerSecond);
    CHECK(next_update(first).month_to_date_cost == draft_usage_subtotal(invoicing));
  }

  // A price change without an ingest: a second subscriber's snapshot has it,
  // and the first sees it with the next update.
  REQUIRE(invoicing.set_plan("acme", plan("0.3"), "test").ok());
  caf::scoped_actor second{system};
  const auto snapshot = subscribe(second, ledger);
  CHECK(snapshot.month_to_date_cost == draft_usage_subtotal(invoicing));
  CHECK(snapshot.month_to_date_cost != priced.month_to_date_cost);
  append(system, ledger, "eu", 10, 11 * model::kNanosPerSecond);
  const std::string expected = draft_usage_subtotal(invoicing);
  CHECK(next_update(first).month_to_date_cost == expected);
  CHECK(next_update(second).month_to_date_cost == expected);
  caf::anon_send_exit(ledger, caf::exit_reason::user_shutdown);
}
