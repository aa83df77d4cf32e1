// Passivation: a customer ledger stops once it has been idle for its idle
// period, measured from its last work, and never while it has work or a live
// subscriber.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include <chrono>
#include <thread>

#include "../storage/test_support.hpp"
#include "actors/customer_ledger.hpp"
#include "actors/errors.hpp"
#include "actors/messages.hpp"

using namespace billing;
using namespace billing::storage::testing;
using namespace std::chrono_literals;

namespace {

struct actor_config : caf::actor_system_config {
  actor_config() { actors::add_message_types(*this); }
};

void append_one(caf::actor_system& system, const actors::customer_actor& ledger, int64_t start) {
  model::customer_part part;
  part.customer_id = "acme";
  part.meta = {"batch", "metald-1", "eu", t0, ""};
  part.windows.push_back(sample_window("acme", "eu", "vm-1", start));
  part.windows.back().network_tx_bytes = 1;
  part.indices.push_back(0);
  caf::scoped_actor self{system};
  self->request(ledger, 10s, actors::append_atom::value, std::move(part))
      .receive(
          [&](std::vector<model::item_outcome>& outcomes) {
            CHECK(outcomes.at(0).status == model::item_status::accepted);
          },
          [&](caf::error& error) { FAIL_CHECK(actors::to_status(error).message()); });
}

// Whether `ledger`, watched by `watcher`, stops within `within`.
bool stops_within(caf::scoped_actor& watcher, std::chrono::milliseconds within) {
  bool stopped = false;
  watcher->receive([&](caf::down_msg&) { stopped = true; }, caf::after(within) >> [] {});
  return stopped;
}

// A ledger of its own store with idle period `idle`, monitored by `watcher`.
struct watched_ledger {
  explicit watched_ledger(std::chrono::seconds idle)
      : store{open_store(options_for(dir))},
        ledger{actors::spawn_customer_ledger(system, "acme", store, nullptr, idle)} {
    watcher->monitor(ledger);
  }
  temp_dir dir;
  std::shared_ptr<storage::ledger_store> store;
  actor_config config;
  caf::actor_system system{config};
  actors::customer_actor ledger;
  caf::scoped_actor watcher{system};
};

}  // namespace

TEST_CASE("an idle ledger stops one idle period after its last work, not before") {
  watched_ledger watched{2s};
  auto& system = watched.system;
  auto& ledger = watched.ledger;
  auto& watcher = watched.watcher;
  // Work every 0.5 s for 3 s: longer than the idle period in all, never idle for it.
  auto last_work = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) {
    append_one(system, ledger, t0 + i * minute);
    last_work = std::chrono::steady_clock::now();
    CHECK_FALSE(stops_within(watcher, 500ms));
  }
  CHECK(stops_within(watcher, 5s));
  CHECK(std::chrono::steady_clock::now() - last_work >= 1900ms);
}

TEST_CASE("a ledger with a live subscriber does not stop; once it leaves, the ledger does") {
  watched_ledger watched{1s};
  auto& system = watched.system;
  auto& ledger = watched.ledger;
  auto& watcher = watched.watcher;
  {
    caf::scoped_actor subscriber{system};
    subscriber
        ->request(ledger, 10s, actors::subscribe_atom::value,
                  caf::actor_cast<actors::subscriber_actor>(subscriber))
        .receive([](model::usage_update&) {},
                 [&](caf::error& error) { FAIL_CHECK(actors::to_status(error).message()); });
    CHECK_FALSE(stops_within(watcher, 3s));
  }  // the subscriber exits
  CHECK(stops_within(watcher, 5s));
}

TEST_CASE("idle 0 keeps a ledger forever") {
  watched_ledger watched{0s};
  auto& system = watched.system;
  auto& ledger = watched.ledger;
  auto& watcher = watched.watcher;
  append_one(system, ledger, t0);
  CHECK_FALSE(stops_within(watcher, 2s));
  caf::anon_send_exit(ledger, caf::exit_reason::user_shutdown);
  CHECK(stops_within(watcher, 5s));
}
