#include "cluster/handover.hpp"

#include <fmt/format.h>
#include <caf/all.hpp>

#include <functional>
#include <limits>

#include "actors/errors.hpp"
#include "model/calendar.hpp"
#include "observability/log.hpp"
#include "storage/keys.hpp"

namespace billing::cluster {
namespace {

// The key ranges a customer owns here, deleted once it is handed over. The
// audit family stays: its entries are links of this node's hash chain.
constexpr std::array kMovedFamilies = {storage::windows_family,    storage::dedup_family,
                                       storage::rollups_family,    storage::plans_family,
                                       storage::invoices_family,   storage::vm_state_family,
                                       storage::metald_gaps_family};

class customer_mover {
 public:
  customer_mover(caf::blocking_actor* self, const membership& members,
                 const actors::directory_actor& router, storage::ledger_store& store,
                 const handover_settings& settings)
      : self_(self), members_(members), router_(router), store_(store), settings_(settings) {}

  // `still_away` is asked again before the local copy is deleted: the
  // owner may have changed while the customer was being copied (etcd mode),
  // and the new owner may be this node, which must then keep its data.
  status move(const std::string& customer_id, const std::function<bool()>& still_away) {
    if (status replayed = replay_windows(customer_id); !replayed.ok()) return replayed;
    if (status copied = copy_records(customer_id); !copied.ok()) return copied;
    if (!still_away()) {
      return status{status_code::aborted, "the customer's owner changed during the hand-over"};
    }
    return erase_here(customer_id);
  }

 private:
  status send_part(const std::string& customer_id, std::vector<model::usage_window> windows) {
    model::customer_part part;
    part.customer_id = customer_id;
    part.meta.batch_id = fmt::format("handover/{}/{}", members_.self().node_id, ++parts_sent_);
    part.meta.instance_id = "handover";
    part.meta.received_at_ns = model::unix_now_ns();
    part.meta.caller = "handover:" + members_.self().node_id;
    part.indices.resize(windows.size());
    for (uint32_t i = 0; i < part.indices.size(); ++i) part.indices[i] = i;
    part.windows = std::move(windows);
    status outcome;
    self_
        ->request(router_, caf::duration{settings_.request_timeout}, actors::append_atom::value,
                  std::move(part))
        .receive([](std::vector<model::item_outcome>&) {},
                 [&](caf::error& error) { outcome = actors::to_status(error); });
    return outcome;
  }

  status replay_windows(const std::string& customer_id) {
    std::vector<model::usage_window> chunk;
    status sent;
    const status scanned =
        store_.scan_windows(customer_id, std::numeric_limits<int64_t>::min(),
                            std::numeric_limits<int64_t>::max(), [&](model::usage_window& window) {
                              chunk.push_back(std::move(window));
                              if (chunk.size() < settings_.windows_per_part) return true;
                              sent = send_part(customer_id, std::exchange(chunk, {}));
                              return sent.ok();
                            });
    if (!scanned.ok()) return scanned;
    if (!sent.ok()) return sent;
    return chunk.empty() ? status::ok_status() : send_part(customer_id, std::move(chunk));
  }

  status copy_records(const std::string& customer_id) {
    auto records = store_.export_customer_records(customer_id);
    if (!records.ok()) return records.error();
    if (records.value().empty()) return status::ok_status();
    status outcome;
    self_
        ->request(router_, caf::duration{settings_.request_timeout}, actors::import_atom::value,
                  storage::customer_records{customer_id, std::move(records).value()})
        .receive([](uint32_t) {}, [&](caf::error& error) { outcome = actors::to_status(error); });
    return outcome;
  }

  status erase_here(const std::string& customer_id) {
    // The local ledger actor's caches describe what is deleted now: stop it,
    // or a customer that comes back later would count its old usage twice.
    status forgotten;
    self_
        ->request(router_, caf::duration{settings_.request_timeout}, actors::forget_atom::value,
                  customer_id)
        .receive([](bool) {}, [&](caf::error& error) { forgotten = actors::to_status(error); });
    if (!forgotten.ok()) return forgotten;
    return store_.erase_customer(
        customer_id, std::vector<uint32_t>(kMovedFamilies.begin(), kMovedFamilies.end()));
  }

  caf::blocking_actor* self_;
  const membership& members_;
  const actors::directory_actor& router_;
  storage::ledger_store& store_;
  const handover_settings& settings_;
  uint64_t parts_sent_ = 0;
};

// One pass over the customers stored here; true when none is left to move.
bool hand_over_once(caf::blocking_actor* self, const membership& members,
                    const actors::directory_actor& router, storage::ledger_store& store,
                    cluster_gauges& gauges, const handover_settings& settings,
                    const std::function<bool(const std::string&)>& still_away) {
  auto customers = store.list_customers();
  if (!customers.ok()) {
    observability::log_error("hand-over: cannot list customers: {}", customers.error().message());
    return false;
  }
  customer_mover mover{self, members, router, store, settings};
  bool all_moved = true;
  for (const auto& customer_id : customers.value()) {
    if (members.is_local(customer_id)) continue;
    const auto& owner = members.owner_of(customer_id);
    if (status moved = mover.move(customer_id, [&] { return still_away(customer_id); });
        !moved.ok()) {
      observability::log_warn("hand-over of customer '{}' to node '{}' failed, retried later: {}",
                              customer_id, owner.node_id, moved.message());
      all_moved = false;
      continue;
    }
    gauges.handover_customers++;
    observability::log_info("hand-over: customer '{}' moved to node '{}'", customer_id,
                            owner.node_id);
  }
  return all_moved;
}

}  // namespace

namespace {

using members_atom = caf::atom_constant<caf::atom("members")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;

}  // namespace

caf::actor spawn_handover(caf::actor_system& system, membership members,
                          actors::directory_actor router,
                          std::shared_ptr<storage::ledger_store> store,
                          std::shared_ptr<cluster_gauges> gauges, handover_settings settings) {
  return system.spawn<caf::detached>([members = std::move(members), router = std::move(router),
                                      store = std::move(store), gauges = std::move(gauges),
                                      settings](caf::blocking_actor* self) mutable {
    bool running = true;
    auto delay = settings.first_delay;
    auto take_members = [&](std::vector<member>& now, std::vector<shard_assignment>& shards,
                            bool leaving) {
      const member me = members.self();
      auto made = leaving ? membership::leaving(me, std::move(now))
                          : membership::make(std::move(now), me.node_id);
      if (!made.ok()) return;
      members = std::move(made).value();
      members.set_shards(std::move(shards));
      delay = settings.first_delay;  // customers may have new owners: a pass soon
    };
    // Before deleting a handed-over customer: takes any member set that
    // arrived meanwhile (the pass has a copy of the one it started with).
    auto still_away = [&](const std::string& customer_id) {
      bool drained = false;
      while (!drained) {
        self->receive(
            [&](members_atom, std::vector<member>& now, std::vector<shard_assignment>& shards,
                bool leaving) { take_members(now, shards, leaving); },
            caf::after(std::chrono::seconds(0)) >> [&] { drained = true; });
      }
      return !members.is_local(customer_id);
    };
    auto pass = [&] {
      const membership snapshot = members;
      return hand_over_once(self, snapshot, router, *store, *gauges, settings, still_away);
    };
    while (running) {
      self->receive(
          [&](caf::exit_msg&) { running = false; },
          [&](members_atom, std::vector<member>& now, std::vector<shard_assignment>& shards,
              bool leaving) { take_members(now, shards, leaving); },
          [&](drain_atom) { return pass(); },
          caf::after(delay) >>
              [&] {
                const bool all_moved = pass();
                if (all_moved && !settings.keep_running) running = false;
                delay = all_moved ? settings.idle_interval : settings.retry_interval;
              });
    }
  });
}

void handover_members(const caf::actor& handover, std::vector<member> members,
                      std::vector<shard_assignment> shards, bool leaving) {
  caf::anon_send(handover, members_atom::value, std::move(members), std::move(shards), leaving);
}

bool drain_now(caf::actor_system& system, const caf::actor& handover,
               std::chrono::milliseconds timeout) {
  caf::scoped_actor asker{system};
  bool drained = false;
  asker->request(handover, caf::duration{timeout}, drain_atom::value)
      .receive([&](bool all_moved) { drained = all_moved; }, [](caf::error&) {});
  return drained;
}

}  // namespace billing::cluster
