// GetBillingWindow's rollup way on a ledger written by the customer ledger
// actor itself (rollup totals as Puts, cached between commit groups), not by
// hand: the rollups must be found consistent with the raw windows, so the
// fast way answers, and answer exactly what the raw windows give.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include "../storage/test_support.hpp"
#include "actors/customer_ledger.hpp"
#include "actors/errors.hpp"
#include "actors/messages.hpp"
#include "actors/query_worker.hpp"
#include "model/calendar.hpp"

using namespace billing;
using namespace billing::storage::testing;

namespace {

struct ledger_config : caf::actor_system_config {
  ledger_config() { actors::add_message_types(*this); }
};

}  // namespace

TEST_CASE("windows stored by the ledger actor are answered from the rollups, exactly") {
  temp_dir dir;
  auto store = open_store(options_for(dir));
  ledger_config config;
  caf::actor_system system{config};
  auto ledger = actors::spawn_customer_ledger(system, "acme", store);
  const int64_t hour0 = model::bucket_start(model::granularity::hour, t0);
  // Three hours of two VMs in two parts per hour (two commit groups, so the
  // cached totals are exercised), one VM with a 10-minute hole.
  uint64_t seed = 1;
  for (int64_t part_start = hour0; part_start < hour0 + 3 * model::kNanosPerHour;
       part_start += 30 * minute) {
    model::customer_part part;
    part.customer_id = "acme";
    part.meta = {"batch", "metald-1", "eu", t0, ""};
    for (const char* vm : {"vm-1", "vm-2"}) {
      for (int64_t start = part_start; start < part_start + 30 * minute; start += minute) {
        const bool hole = std::string{vm} == "vm-2" && start >= hour0 + 70 * minute &&
                          start < hour0 + 80 * minute;
        if (hole) continue;
        auto window = sample_window("acme", "eu", vm, start, seed++);
        window.network_tx_bytes = seed;  // sample_window's is near 2^64: keep sums in range
        part.indices.push_back(static_cast<uint32_t>(part.windows.size()));
        part.windows.push_back(window);
      }
    }
    caf::scoped_actor self{system};
    self->request(ledger, std::chrono::seconds{10}, actors::append_atom::value, std::move(part))
        .receive([](std::vector<model::item_outcome>&) {},
                 [](caf::error& error) { FAIL(actors::to_status(error).message()); });
  }
  caf::anon_send_exit(ledger, caf::exit_reason::user_shutdown);

  actors::query_settings settings;
  settings.limits.expected_cadence_ns = minute;
  for (auto [from, to] :
       {std::pair{hour0, hour0 + model::kNanosPerHour},
        std::pair{hour0, hour0 + 3 * model::kNanosPerHour},
        std::pair{hour0 + 17 * minute, hour0 + 2 * model::kNanosPerHour + minute}}) {
    const model::window_query query{"acme", from, to, true};
    auto reference = actors::billing_window_from_raw(*store, query, settings);
    REQUIRE_MESSAGE(reference.ok(), reference.error().message());
    auto fast = actors::billing_window_from_rollups(*store, query, settings);
    REQUIRE_MESSAGE(fast.has_value(), "the rollup way stood aside on an actor-written ledger");
    CHECK(*fast == reference.value());
    CHECK(reference->totals.window_count > 0);
    // vm-2's hole is a gap wherever the range covers it.
    CHECK(reference->gaps.empty() == (to <= hour0 + 70 * minute));
  }
}
