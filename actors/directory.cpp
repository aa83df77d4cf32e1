#include "actors/directory.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include "actors/customer_ledger.hpp"
#include "actors/errors.hpp"

namespace billing::actors {
namespace {

struct directory_state {
  ingest_settings settings;
  std::shared_ptr<storage::ledger_store> store;
  std::vector<query_actor> query_workers;
  size_t next_worker = 0;
  std::map<std::string, ingest_actor> ingest_by_region;
  std::map<std::string, customer_actor> ledger_by_customer;
  std::shared_ptr<actor_gauges> gauges;
  directory_actor parts_router;
  std::shared_ptr<const call_executor> calls;
  static inline const char* name = "directory";
};

using directory_pointer = directory_actor::stateful_pointer<directory_state>;

template <class Handle>
bool forget(std::map<std::string, Handle>& children, const caf::actor_addr& source) {
  for (auto it = children.begin(); it != children.end(); ++it) {
    if (it->second.address() == source) {
      children.erase(it);
      return true;
    }
  }
  return false;
}

// Stores hand-over records that are not there yet (the customer's ledger
// here may have written some meanwhile: those win), waits for the synced
// commit, answers the count and ends.
using importer_actor =
    caf::typed_actor<caf::replies_to<import_atom, storage::customer_records>::with<uint32_t>>;

importer_actor::behavior_type record_importer(importer_actor::pointer self,
                                              std::shared_ptr<storage::ledger_store> store) {
  return {
      [self, store](import_atom, const storage::customer_records& moved) -> caf::result<uint32_t> {
        const auto& [customer_id, records] = moved;
        self->quit();
        storage::write_set writes;
        uint32_t stored = 0;
        for (const auto& record : records) {
          auto existing = store->get(record.family, record.key);
          if (!existing.ok()) return to_error(existing.error());
          if (existing.value()) continue;
          writes.put_record(record);
          ++stored;
        }
        if (status s = store->commit_and_wait(std::move(writes)); !s.ok()) {
          return to_error(
              status{s.code(), "importing the records of '" + customer_id + "': " + s.message()});
        }
        return stored;
      },
  };
}

using call_runner_actor =
    caf::typed_actor<caf::replies_to<call_atom, forwarded_call>::with<std::vector<std::string>>>;

// Runs one forwarded call, answers and ends.
call_runner_actor::behavior_type call_runner(call_runner_actor::pointer self,
                                             std::shared_ptr<const call_executor> calls) {
  return {
      [self, calls](call_atom,
                    const forwarded_call& call) -> caf::result<std::vector<std::string>> {
        self->quit();
        auto response = (*calls)(call);
        if (!response.ok()) return to_error(response.error());
        return std::vector<std::string>{std::move(response).value()};
      },
  };
}

directory_actor::behavior_type directory(directory_pointer self, ingest_settings settings,
                                         query_settings queries,
                                         std::shared_ptr<storage::ledger_store> store,
                                         std::shared_ptr<actor_gauges> gauges,
                                         directory_actor parts_router, call_executor calls) {
  if (calls) self->state.calls = std::make_shared<const call_executor>(std::move(calls));
  self->state.gauges = std::move(gauges);
  self->state.parts_router =
      parts_router ? std::move(parts_router) : caf::actor_cast<directory_actor>(self);
  self->state.settings = std::move(settings);
  self->state.store = std::move(store);
  for (uint32_t i = 0; i < std::max<uint32_t>(queries.workers, 1); ++i) {
    auto worker = spawn_query_worker(self->system(), queries, self->state.store);
    self->link_to(worker);
    self->state.query_workers.push_back(std::move(worker));
  }
  // A child that fails is forgotten (its callers got an error and retry; the
  // next message respawns it from the durable ledger). Any other exit
  // message is a shutdown request.
  self->set_exit_handler([self, queries](caf::exit_msg& msg) {
    auto& st = self->state;
    if (forget(st.ledger_by_customer, msg.source) || forget(st.ingest_by_region, msg.source)) {
      return;
    }
    for (auto& worker : st.query_workers) {
      // Query workers hold no state: replace one that failed.
      if (worker.address() == msg.source && msg.reason != caf::exit_reason::user_shutdown) {
        worker = spawn_query_worker(self->system(), queries, st.store);
        self->link_to(worker);
        return;
      }
    }
    self->quit(msg.reason);
  });

  auto ingest_for = [self](const std::string& region) {
    auto& st = self->state;
    auto it = st.ingest_by_region.find(region);
    if (it == st.ingest_by_region.end()) {
      auto child = spawn_regional_ingest(self->system(), region, st.settings, st.parts_router);
      self->link_to(child);
      it = st.ingest_by_region.emplace(region, std::move(child)).first;
    }
    return it->second;
  };
  auto ledger_for = [self](const std::string& customer_id) {
    auto& st = self->state;
    auto it = st.ledger_by_customer.find(customer_id);
    if (it == st.ledger_by_customer.end()) {
      auto child = spawn_customer_ledger(self->system(), customer_id, st.store, st.gauges,
                                         st.settings.customer_idle,
                                         st.settings.limits.max_window_ns, st.settings.terms);
      self->link_to(child);
      it = st.ledger_by_customer.emplace(customer_id, std::move(child)).first;
    }
    return it->second;
  };

  // Replicated ledgers: a customer is served only by its shard's leader
  // once that holds every acknowledged write (actors/shard_terms.hpp).
  auto unserved = [self](const std::string& customer_id) -> std::optional<caf::error> {
    const auto& terms = self->state.settings.terms;
    if (!terms || customer_id.empty()) return std::nullopt;
    auto served = terms->serving(customer_id);
    if (served.ok()) return std::nullopt;
    return to_error(served.error());
  };
  auto next_worker = [self] {
    auto& st = self->state;
    return st.query_workers[st.next_worker++ % st.query_workers.size()];
  };

  return {
      [self, ingest_for](ingest_atom atom,
                         model::ingest_batch& batch) -> caf::delegated<model::ingest_report> {
        return self->delegate(ingest_for(batch.meta.region), atom, std::move(batch));
      },
      [self, ledger_for](append_atom atom, model::customer_part& part)
          -> caf::delegated<std::vector<model::item_outcome>> {
        return self->delegate(ledger_for(part.customer_id), atom, std::move(part));
      },
      [self, next_worker, unserved](
          usage_atom atom, model::usage_query& query) -> caf::result<model::customer_usage> {
        if (auto refused = unserved(query.customer_id)) return std::move(*refused);
        return self->delegate(next_worker(), atom, std::move(query));
      },
      [self, next_worker, unserved](
          window_atom atom, model::window_query& query) -> caf::result<model::billing_window> {
        if (auto refused = unserved(query.customer_id)) return std::move(*refused);
        return self->delegate(next_worker(), atom, std::move(query));
      },
      [self, ledger_for, unserved](
          subscribe_atom atom, const std::string& customer_id,
          subscriber_actor& subscriber) -> caf::result<model::usage_update> {
        if (auto refused = unserved(customer_id)) return std::move(*refused);
        return self->delegate(ledger_for(customer_id), atom, std::move(subscriber));
      },
      [self, ledger_for](metald_atom atom, model::metald_op& op) -> caf::delegated<uint32_t> {
        return self->delegate(ledger_for(op.customer_id), atom, std::move(op));
      },
      [self](forget_atom, const std::string& customer_id) {
        auto& ledgers = self->state.ledger_by_customer;
        auto found = ledgers.find(customer_id);
        if (found == ledgers.end()) return false;
        // Unlinked first: its exit is not a failure to react to.
        self->unlink_from(found->second);
        self->send_exit(found->second, caf::exit_reason::user_shutdown);
        ledgers.erase(found);
        return true;
      },
      [self](import_atom atom, storage::customer_records& moved) -> caf::delegated<uint32_t> {
        // Waits for the disk, so on a thread of its own rather than here.
        auto importer = self->system().spawn<caf::detached>(record_importer, self->state.store);
        return self->delegate(importer, atom, std::move(moved));
      },
      [self, unserved](call_atom atom,
                       forwarded_call& call) -> caf::result<std::vector<std::string>> {
        if (auto refused = unserved(call.customer_id)) return std::move(*refused);
        if (!self->state.calls) {
          return to_error(status{status_code::unimplemented, "no such call: " + call.method});
        }
        // Calls block on RocksDB: on a thread of their own.
        auto runner = self->system().spawn<caf::detached>(call_runner, self->state.calls);
        return self->delegate(runner, atom, std::move(call));
      },
      [self](locate_atom, const std::string& vm_id) -> caf::result<std::string> {
        auto customer = self->state.store->find_vm_customer(vm_id);
        if (!customer.ok()) return to_error(customer.error());
        return customer.value().value_or(std::string{});
      },
  };
}

}  // namespace

directory_actor spawn_directory(caf::actor_system& system, ingest_settings settings,
                                query_settings queries,
                                std::shared_ptr<storage::ledger_store> store,
                                std::shared_ptr<actor_gauges> gauges, directory_actor parts_router,
                                call_executor calls) {
  return system.spawn(directory, std::move(settings), std::move(queries), std::move(store),
                      std::move(gauges), std::move(parts_router), std::move(calls));
}

}  // namespace billing::actors
