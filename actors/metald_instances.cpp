#include "actors/metald_instances.hpp"

#include "actors/commit_waiters.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <set>

#include "actors/errors.hpp"
#include "model/calendar.hpp"
#include "observability/log.hpp"

namespace billing::actors {
namespace {

struct instances_state {
  instances_settings settings;
  directory_actor directory;
  std::shared_ptr<storage::ledger_store> store;
  // What each instance's last durable heartbeat said.
  std::map<std::string, model::metald_instance> instances;
  // Instances whose VMs' sessions are being ended right now.
  std::set<std::string> expiring;
  // VMs listed as active that we have never seen: which instance listed them
  // and its first heartbeat that did.
  struct unknown_vm {
    std::string instance_id;
    int64_t first_listed_ns = 0;
  };
  std::map<std::string, unknown_vm> unknown_listed;
  commit_waiters pending_commits;
  // When this actor started: silence is counted from here at the earliest,
  // so billingd's own downtime (metald's heartbeats failed meanwhile) does
  // not time out every instance at once on restart.
  int64_t started_ns = 0;
  static inline const char* name = "metald_instances";
};

using instances_pointer = instances_actor::stateful_pointer<instances_state>;

// Commits `writes`; `done` runs on this actor once the write returned.
void commit(instances_pointer self, storage::write_set writes, std::function<void(status)> done) {
  auto& st = self->state;
  const uint64_t id = st.pending_commits.add(std::move(done));
  auto me = caf::actor_cast<instances_actor>(self);
  st.store->commit(std::move(writes), [me, id](status outcome) {
    caf::anon_send(me, committed_atom::value, id, static_cast<uint8_t>(outcome.code()),
                   outcome.message());
  });
}

// Records that `id` timed out, unless a heartbeat arrived meanwhile.
void record_timed_out(instances_pointer self, const std::string& id, int64_t heartbeat_ns) {
  auto& st = self->state;
  auto it = st.instances.find(id);
  if (it == st.instances.end() || it->second.last_heartbeat_ns != heartbeat_ns) {
    st.expiring.erase(id);
    return;
  }
  model::metald_instance timed_out = it->second;
  timed_out.timed_out = true;
  storage::write_set writes;
  writes.put_metald_instance(id, timed_out);
  commit(self, std::move(writes), [self, id, heartbeat_ns](status outcome) {
    auto& st = self->state;
    st.expiring.erase(id);
    auto it = st.instances.find(id);
    if (outcome.ok() && it != st.instances.end() && it->second.last_heartbeat_ns == heartbeat_ns) {
      it->second.timed_out = true;
    }
  });
}

// Ends the open sessions of every VM `id` last listed, at its last heartbeat.
// Any failure leaves the instance as it was: the next sweep tries again.
void expire(instances_pointer self, const std::string& id, const model::metald_instance& inst) {
  auto& st = self->state;
  st.expiring.insert(id);
  observability::log_info(
      "metald instance {} silent since its heartbeat at {}: ending the "
      "sessions of its {} VMs there",
      id, model::format_rfc3339(inst.last_heartbeat_ns), inst.active_vms.size());
  const int64_t heartbeat_ns = inst.last_heartbeat_ns;
  auto remaining = std::make_shared<size_t>(inst.active_vms.size() + 1);
  auto failed = std::make_shared<bool>(false);
  auto one_done = [self, id, heartbeat_ns, remaining, failed] {
    if (--*remaining > 0) return;
    if (*failed) {
      self->state.expiring.erase(id);
    } else {
      record_timed_out(self, id, heartbeat_ns);
    }
  };
  for (const auto& vm : inst.active_vms) {
    auto customer = st.store->find_vm_customer(vm);
    if (!customer.ok()) {
      *failed = true;
    } else if (customer.value()) {  // a VM never seen has no session to end
      model::metald_op op;
      op.kind = model::metald_op_kind::timeout;
      op.customer_id = *customer.value();
      op.region = st.settings.region;
      op.vm_id = vm;
      op.at_ns = heartbeat_ns;
      self->request(st.directory, std::chrono::seconds{30}, metald_atom::value, std::move(op))
          .then([one_done](uint32_t) { one_done(); },
                [one_done, failed](caf::error&) {
                  *failed = true;
                  one_done();
                });
      continue;
    }
    one_done();
  }
  one_done();
}

std::chrono::milliseconds sweep_interval(const instances_settings& settings) {
  const auto quarter = std::chrono::milliseconds{settings.heartbeat_timeout_ns / 4'000'000};
  return std::clamp(quarter, std::chrono::milliseconds{50}, std::chrono::milliseconds{5000});
}

// Records the gap of a VM listed before it was known, now that it is: from
// the first heartbeat that listed it to its session start.
void record_listed_gap(instances_pointer self, const std::string& vm, const std::string& customer,
                       int64_t first_listed_ns) {
  auto& st = self->state;
  auto state = st.store->find_vm_state(customer, vm);
  if (!state.ok() || !state.value()) return;
  const int64_t start = state.value()->session_start_ns;
  if (start == model::kNoTimestamp || start - first_listed_ns < st.settings.gap_after_ns) return;
  model::metald_op op;
  op.kind = model::metald_op_kind::gap;
  op.customer_id = customer;
  op.region = st.settings.region;
  op.vm_id = vm;
  op.at_ns = first_listed_ns;
  op.until_ns = start;
  self->request(st.directory, std::chrono::seconds{30}, metald_atom::value, std::move(op))
      .then([](uint32_t) {},
            [vm](caf::error& error) {
              observability::log_error("cannot record the gap of listed vm {}: {}", vm,
                                       to_status(error).message());
            });
}

// After instance `id`'s heartbeat: remembers the listed VMs we have never
// seen, and records the gap of those that became known since.
void track_unknown_vms(instances_pointer self, const std::string& id,
                       const model::metald_instance& inst) {
  auto& st = self->state;
  const std::set<std::string> listed(inst.active_vms.begin(), inst.active_vms.end());
  for (const auto& vm : listed) {
    if (st.unknown_listed.contains(vm)) continue;
    auto customer = st.store->find_vm_customer(vm);
    if (!customer.ok() || customer.value()) continue;
    observability::log_warn(
        "metald instance {} lists vm {} as active, but no start or samples were received for "
        "it: it has no customer yet, so its gap is recorded once it is known",
        id, vm);
    st.unknown_listed.emplace(vm, instances_state::unknown_vm{id, inst.last_heartbeat_ns});
  }
  for (auto it = st.unknown_listed.begin(); it != st.unknown_listed.end();) {
    const auto& [vm, unknown] = *it;
    if (unknown.instance_id != id || unknown.first_listed_ns == inst.last_heartbeat_ns) {
      ++it;
      continue;
    }
    auto customer = st.store->find_vm_customer(vm);
    if (!customer.ok()) {
      ++it;
      continue;
    }
    if (customer.value()) {
      record_listed_gap(self, vm, *customer.value(), unknown.first_listed_ns);
    } else if (listed.contains(vm)) {
      ++it;
      continue;
    }
    it = st.unknown_listed.erase(it);
  }
}

void sweep(instances_pointer self) {
  auto& st = self->state;
  const int64_t now = model::unix_now_ns();
  for (const auto& [id, inst] : st.instances) {
    if (inst.timed_out || st.expiring.contains(id)) continue;
    const int64_t silent_since = std::max(inst.last_heartbeat_ns, st.started_ns);
    if (now - silent_since <= st.settings.heartbeat_timeout_ns) continue;
    expire(self, id, inst);
  }
}

result<std::vector<model::metald_session>> active_sessions(const instances_state& st,
                                                           const std::string& id) {
  std::vector<model::metald_session> sessions;
  auto it = st.instances.find(id);
  if (it == st.instances.end()) return sessions;
  for (const auto& vm : it->second.active_vms) {
    auto customer = st.store->find_vm_customer(vm);
    if (!customer.ok()) return customer.error();
    if (!customer.value()) continue;
    auto state = st.store->find_vm_state(*customer.value(), vm);
    if (!state.ok()) return state.error();
    if (!state.value() || !state.value()->session_open()) continue;
    const auto& vm_state = *state.value();
    sessions.push_back({vm, *customer.value(), vm_state.session_start_ns,
                        vm_state.gauge_known ? vm_state.watermark_ns : model::kNoTimestamp});
  }
  return sessions;
}

// Finishes the held stop of (customer, vm) through its ledger; retried after
// another grace when the ledger cannot be reached.
void finish_held_stop(instances_pointer self, const std::string& customer, const std::string& vm) {
  model::metald_op op;
  op.kind = model::metald_op_kind::finish_stop;
  op.customer_id = customer;
  op.region = self->state.settings.region;
  op.vm_id = vm;
  self->request(self->state.directory, std::chrono::seconds{30}, metald_atom::value, std::move(op))
      .then([](uint32_t) {},
            [self, customer, vm](caf::error& error) {
              observability::log_warn("cannot finish the held stop of vm {} yet ({}); retrying", vm,
                                      caf::to_string(error));
              self->delayed_send(self, self->state.settings.stop_grace, held_stop_atom::value,
                                 customer, vm);
            });
}

// At start: every stop held when billingd stopped is finished after the grace.
void schedule_recovered_stops(instances_pointer self) {
  status scanned = self->state.store->scan_all_vm_states(
      [self](const std::string& customer, const std::string& vm, const model::vm_state& state) {
        if (state.stop_pending) {
          self->delayed_send(self, self->state.settings.stop_grace, held_stop_atom::value, customer,
                             vm);
        }
        return true;
      });
  if (!scanned.ok()) {
    observability::log_error("cannot look for held VM stops: {}", scanned.message());
  }
}

instances_actor::behavior_type metald_instances(instances_pointer self, instances_settings settings,
                                                directory_actor directory,
                                                std::shared_ptr<storage::ledger_store> store) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.directory = std::move(directory);
  st.store = std::move(store);
  st.started_ns = model::unix_now_ns();
  status loaded = st.store->scan_metald_instances(
      [&st](const std::string& id, const model::metald_instance& inst) {
        st.instances.emplace(id, inst);
        return true;
      });
  if (!loaded.ok()) {
    observability::log_error("cannot read the metald instances: {}", loaded.message());
  }
  self->send(self, sweep_atom::value);
  schedule_recovered_stops(self);
  return {
      [self](heartbeat_atom, std::string& id,
             std::vector<std::string>& active_vms) -> caf::result<bool> {
        auto promise = self->make_response_promise<bool>();
        model::metald_instance inst{model::unix_now_ns(), std::move(active_vms), false};
        storage::write_set writes;
        writes.put_metald_instance(id, inst);
        commit(self, std::move(writes), [self, promise, id, inst](status outcome) mutable {
          if (!outcome.ok()) {
            promise.deliver(to_error(outcome));
            return;
          }
          self->state.instances[id] = inst;
          track_unknown_vms(self, id, inst);
          promise.deliver(true);
        });
        return promise;
      },
      [self](sessions_atom,
             const std::string& id) -> caf::result<std::vector<model::metald_session>> {
        auto sessions = active_sessions(self->state, id);
        if (!sessions.ok()) return to_error(sessions.error());
        return std::move(sessions.value());
      },
      [self](held_stop_atom, std::string& customer, std::string& vm) {
        if (self->current_sender() == self->ctrl()) {
          finish_held_stop(self, customer, vm);
        } else {
          self->delayed_send(self, self->state.settings.stop_grace, held_stop_atom::value,
                             std::move(customer), std::move(vm));
        }
      },
      [self](sweep_atom) {
        sweep(self);
        self->delayed_send(self, sweep_interval(self->state.settings), sweep_atom::value);
      },
      [self](committed_atom, uint64_t id, uint8_t code, std::string& message) {
        self->state.pending_commits.complete(id, code, std::move(message));
      },
  };
}

}  // namespace

instances_actor spawn_metald_instances(caf::actor_system& system, instances_settings settings,
                                       directory_actor directory,
                                       std::shared_ptr<storage::ledger_store> store) {
  return system.spawn(metald_instances, std::move(settings), std::move(directory),
                      std::move(store));
}

}  // namespace billing::actors
