#include "actors/customer_ledger.hpp"

#include "actors/ledger_state.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_map>

#include "actors/errors.hpp"
#include "actors/invoicing.hpp"
#include "model/calendar.hpp"
#include "model/month_cost.hpp"
#include "model/rollup.hpp"
#include "storage/billing_records.hpp"

namespace billing::actors {
namespace {

using namespace ledger_internal;

using ledger_pointer = customer_actor::stateful_pointer<ledger_state>;

// Computes the month's usage cost from the ledger as the draft invoice does
// (hourly rollups, raw windows of split hours): once per first subscriber,
// month and plan change, never per update.
status reload_month_cost(ledger_state& st) {
  auto versions = storage::effective_plan(*st.store, st.customer_id);
  if (!versions.ok()) return versions.error();
  model::usage_quantities quantities;
  if (!versions.value().empty()) {
    const int64_t month_end =
        model::next_bucket_start(model::granularity::month, st.month_start_ns);
    model::invoice_builder builder(st.customer_id, st.month_start_ns, month_end, versions.value());
    if (status fed = feed_invoice_builder(*st.store, st.customer_id, st.month_start_ns, month_end,
                                          st.max_window_ns, builder);
        !fed.ok()) {
      return fed;
    }
    auto usage = std::move(builder).usage();
    if (!usage.ok()) return usage.error();
    quantities = std::move(usage).value();
  }
  st.cost = model::month_cost(st.customer_id, st.month_start_ns, std::move(versions).value(),
                              std::move(quantities));
  return status::ok_status();
}

// Whether the plan pricing the customer is still the one the cost was loaded
// under (SetCustomerPlan writes plans from other actors).
result<bool> plan_unchanged(const ledger_state& st) {
  auto versions = storage::effective_plan(*st.store, st.customer_id);
  if (!versions.ok()) return versions.error();
  const auto& held = st.cost.versions();
  return std::equal(versions.value().begin(), versions.value().end(), held.begin(), held.end(),
                    [](const model::plan_version& a, const model::plan_version& b) {
                      return storage::encode_plan_version(a) == storage::encode_plan_version(b);
                    });
}

// Reads this month's totals from the monthly rollups. Only called while no
// commit is in flight, so the store holds exactly what was acknowledged.
status reload_month_to_date(ledger_state& st) {
  st.month_start_ns = model::bucket_start(model::granularity::month, model::unix_now_ns());
  const int64_t month_end = model::next_bucket_start(model::granularity::month, st.month_start_ns);
  model::usage_totals total;
  status added = status::ok_status();
  status scanned = st.store->scan_rollups(
      st.customer_id, model::granularity::month, st.month_start_ns, month_end,
      [&](const model::rollup_id&, const model::rollup_value& value) {
        added = total.add(value.totals);
        return added.ok();
      });
  if (!scanned.ok()) return scanned;
  if (!added.ok()) return added;
  st.month_to_date = total;
  return reload_month_cost(st);
}

bool month_has_turned(const ledger_state& st) {
  return model::bucket_start(model::granularity::month, model::unix_now_ns()) != st.month_start_ns;
}

result<model::usage_update> make_update(const ledger_state& st, bool snapshot,
                                        const model::usage_totals& delta) {
  auto cost = st.cost.cost();
  if (!cost.ok()) return cost.error();
  return model::usage_update{st.customer_id,         snapshot,    delta,
                             st.month_to_date,       st.sequence, model::unix_now_ns(),
                             std::move(cost).value()};
}

// Ends every stream (an error the ledger cannot recover from by itself).
void end_subscriptions(ledger_pointer self, const status& error) {
  for (auto& subscriber : self->state.subscribers) self->send_exit(subscriber, to_error(error));
  self->state.subscribers.clear();
}

// Admits subscribers that arrived while a commit was in flight.
void admit_waiting_subscribers(ledger_pointer self) {
  auto& st = self->state;
  if (st.waiting_subscribers.empty()) return;
  auto refuse = [&st](const status& error) {
    for (auto& waiting : st.waiting_subscribers) waiting.promise.deliver(to_error(error));
    st.waiting_subscribers.clear();
  };
  if (st.subscribers.empty() || month_has_turned(st)) {
    if (status loaded = reload_month_to_date(st); !loaded.ok()) return refuse(loaded);
  } else {
    // The others' cost may predate a plan change no ingest has shown yet.
    auto unchanged = plan_unchanged(st);
    if (!unchanged.ok()) return refuse(unchanged.error());
    if (!unchanged.value()) {
      if (status loaded = reload_month_cost(st); !loaded.ok()) return refuse(loaded);
    }
  }
  auto snapshot = make_update(st, true, {});
  for (auto& waiting : st.waiting_subscribers) {
    if (!snapshot.ok()) {
      waiting.promise.deliver(to_error(snapshot.error()));
      continue;
    }
    waiting.promise.deliver(snapshot.value());
    st.subscribers.push_back(std::move(waiting.subscriber));
  }
  st.waiting_subscribers.clear();
}

// After a durable commit: one update per part that stored something.
void publish_committed(ledger_pointer self) {
  auto& st = self->state;
  if (st.subscribers.empty()) return;
  // A new month: this month's rollups (this commit included) are the total.
  const bool reloaded = month_has_turned(st);
  if (reloaded) {
    if (status loaded = reload_month_to_date(st); !loaded.ok())
      return end_subscriptions(self, loaded);
  }
  // A new plan: the cost is recomputed under it (this commit included).
  bool cost_reloaded = reloaded;
  if (!reloaded) {
    auto unchanged = plan_unchanged(st);
    if (!unchanged.ok()) return end_subscriptions(self, unchanged.error());
    if (!unchanged.value()) {
      if (status loaded = reload_month_cost(st); !loaded.ok()) {
        return end_subscriptions(self, loaded);
      }
      cost_reloaded = true;
    }
  }
  for (const auto& usage : st.committing_usage) {
    if (!usage.stored_any) continue;
    // Cannot fail below 2^64 units a month; end the streams rather than lie.
    if (!reloaded && !st.month_to_date.add(usage.month_share).ok()) {
      return end_subscriptions(self, {status_code::out_of_range, "month total overflow"});
    }
    if (!cost_reloaded && usage.cost_added) {
      if (status added = st.cost.apply(*usage.cost_added); !added.ok()) {
        return end_subscriptions(self, added);
      }
    }
    ++st.sequence;
    auto update = make_update(st, false, usage.delta);
    if (!update.ok()) return end_subscriptions(self, update.error());
    for (auto& subscriber : st.subscribers) {
      self->send(subscriber, update_atom::value, update.value());
    }
  }
}

// Writes the group's rollup additions as the buckets' new totals: Puts, not
// Merges, since this ledger is the only writer of its customer's rollups and
// so knows their stored totals (read once per bucket, then cached). A Merge
// made RocksDB count the key's operands in the memtable on every write
// (max_successive_merges), the largest single cost of ingest. Every bucket's
// stored total was loaded (load_rollup_totals) and every window checked
// against it before it was accepted, so a missing total or a failed merge
// here is a defect (the group fails).
status put_rollup_totals(ledger_state& st, const model::rollup_accumulator& added,
                         storage::write_set& writes) {
  auto& cache = st.rollup_totals;
  for (const auto& [id, value] : added.buckets()) {
    const auto cached = cache.values.find(id);
    if (cached == cache.values.end()) {
      return {status_code::internal, "a rollup total was not loaded before its group was judged"};
    }
    model::rollup_value total = cached->second;
    if (status merged = total.merge(value); !merged.ok()) return merged;
    writes.put_rollup(st.customer_id, id, total);
    cache.staged.emplace(id, total);
  }
  return status::ok_status();
}

void finish_group(ledger_state& st) {
  // Whatever is still staged belongs to a group that failed.
  st.vm_states.discard_staged();
  st.rollup_totals.discard_staged();
  st.committing.clear();
  st.committing_outcomes.clear();
  st.committing_usage.clear();
  st.committing_metald.clear();
  st.committing_metald_outcomes.clear();
}

void fail_committing(ledger_state& st, const status& error) {
  for (auto& pending : st.committing) pending.promise.deliver(to_error(error));
  for (auto& pending : st.committing_metald) pending.promise.deliver(to_error(error));
  finish_group(st);
}

void deliver_committed(ledger_state& st) {
  for (size_t i = 0; i < st.committing.size(); ++i) {
    st.committing[i].promise.deliver(std::move(st.committing_outcomes[i]));
  }
  for (size_t i = 0; i < st.committing_metald.size(); ++i) {
    auto& outcome = st.committing_metald_outcomes[i];
    if (outcome.ok()) {
      st.committing_metald[i].promise.deliver(outcome.value());
    } else {
      st.committing_metald[i].promise.deliver(to_error(outcome.error()));
    }
  }
}

void start_commit(ledger_pointer self) {
  auto& st = self->state;
  if (st.in_flight || (st.waiting.empty() && st.waiting_metald.empty())) return;
  st.committing.assign(std::make_move_iterator(st.waiting.begin()),
                       std::make_move_iterator(st.waiting.end()));
  st.alive.add(&actor_gauges::queued_parts, -static_cast<int64_t>(st.waiting.size()));
  st.waiting.clear();
  st.committing_metald.assign(std::make_move_iterator(st.waiting_metald.begin()),
                              std::make_move_iterator(st.waiting_metald.end()));
  st.waiting_metald.clear();

  storage::write_set writes;
  if (st.terms) {
    auto served = st.terms->serving(st.customer_id);
    if (!served.ok()) {
      fail_committing(st, served.error());
      return;
    }
    if (served.value().epoch != st.cached_epoch) {
      st.vm_states = {};
      st.rollup_totals = {};
      st.cached_epoch = served.value().epoch;
    }
    writes.replicate_as_leader(served.value().shard, served.value().epoch);
  }
  model::rollup_accumulator rollups;
  auto judged = judge_group(st, writes, rollups);
  if (!judged.ok()) {
    fail_committing(st, judged.error());
    return;
  }
  st.committing_outcomes = std::move(judged.value());
  auto metald = judge_metald(st, writes, rollups);
  if (!metald.ok()) {
    fail_committing(st, metald.error());
    return;
  }
  st.committing_metald_outcomes = std::move(metald.value());
  if (status put = put_rollup_totals(st, rollups, writes); !put.ok()) {
    fail_committing(st, put);
    return;
  }
  // The requests this write serves, for its commit spans (README "Traces").
  for (const auto& pending : st.committing) writes.add_trace(pending.part.meta.trace);
  for (const auto& pending : st.committing_metald) writes.add_trace(pending.op.trace);
  st.in_flight = true;
  const uint64_t id = ++st.commit_id;
  customer_actor me = caf::actor_cast<customer_actor>(self);
  st.store->commit(std::move(writes), [me, id](status done) {
    caf::anon_send(me, committed_atom::value, id, static_cast<uint8_t>(done.code()),
                   done.message());
  });
}

// Nothing queued, nothing committing, nobody subscribed: safe to stop.
bool is_idle(const ledger_state& st) {
  return !st.in_flight && st.waiting.empty() && st.waiting_metald.empty() &&
         st.subscribers.empty() && st.waiting_subscribers.empty();
}

void note_work(ledger_state& st) {
  if (st.idle.count() > 0) st.last_work = std::chrono::steady_clock::now();
}

// Stops the ledger once it has been idle for st.idle since its last work;
// otherwise looks again when that would be the case. (caf::after would re-arm
// a clock entry on every message, a measurable cost when a batch touches a
// thousand ledgers.)
void check_idle(ledger_pointer self) {
  auto& st = self->state;
  if (st.idle.count() <= 0) return;
  const auto quiet = std::chrono::steady_clock::now() - st.last_work;
  if (quiet >= st.idle && is_idle(st)) {
    self->quit(caf::exit_reason::user_shutdown);
    return;
  }
  const auto next =
      quiet >= st.idle ? std::chrono::steady_clock::duration{st.idle} : st.idle - quiet;
  self->delayed_send(caf::actor_cast<customer_actor>(self), next, idle_check_atom::value);
}

customer_actor::behavior_type customer_ledger(ledger_pointer self, std::string customer_id,
                                              std::shared_ptr<actor_gauges> gauges,
                                              std::chrono::seconds idle, int64_t max_window_ns,
                                              std::shared_ptr<storage::ledger_store> store,
                                              std::shared_ptr<const shard_terms> terms) {
  self->state.terms = std::move(terms);
  self->state.customer_id = std::move(customer_id);
  self->state.max_window_ns = max_window_ns;
  self->state.store = std::move(store);
  self->state.idle = idle;
  note_work(self->state);
  check_idle(self);
  self->state.alive = gauge_share(std::move(gauges), &actor_gauges::customer_ledgers);
  // A subscriber that ends (its client left) is forgotten.
  self->set_down_handler([self](caf::down_msg& down) {
    note_work(self->state);
    auto& subscribers = self->state.subscribers;
    std::erase_if(subscribers,
                  [&](const subscriber_actor& s) { return s.address() == down.source; });
  });
  return {
      [self](append_atom, model::customer_part& part) -> caf::result<outcomes> {
        note_work(self->state);
        auto promise = self->make_response_promise<outcomes>();
        self->state.waiting.push_back({std::move(part), promise});
        self->state.alive.add(&actor_gauges::queued_parts, 1);
        start_commit(self);
        return promise;
      },
      [self](committed_atom, uint64_t id, uint8_t code, std::string& message) {
        auto& st = self->state;
        if (!st.in_flight || id != st.commit_id) return;  // cannot happen; be safe
        st.in_flight = false;
        note_work(st);
        const status done{static_cast<status_code>(code), std::move(message)};
        if (done.code() == status_code::deadline_exceeded) {
          // Durable here but not (yet) on a majority of the shard's replicas:
          // the caches hold what is stored, the callers learn it is not
          // acknowledged (a retry is judged against what is stored).
          st.vm_states.commit_staged();
          st.rollup_totals.commit_staged(max_cached_rollups);
          fail_committing(st, status{status_code::unavailable, done.message()});
        } else if (done.ok()) {
          st.vm_states.commit_staged();
          st.rollup_totals.commit_staged(max_cached_rollups);
          deliver_committed(st);
          publish_committed(self);
          finish_group(st);
        } else {
          fail_committing(st, done);
        }
        admit_waiting_subscribers(self);
        start_commit(self);
      },
      [self](subscribe_atom, subscriber_actor& subscriber) -> caf::result<model::usage_update> {
        note_work(self->state);
        auto promise = self->make_response_promise<model::usage_update>();
        self->monitor(subscriber);
        self->state.waiting_subscribers.push_back({std::move(subscriber), promise});
        if (!self->state.in_flight) admit_waiting_subscribers(self);
        return promise;
      },
      [self](metald_atom, model::metald_op& op) -> caf::result<uint32_t> {
        note_work(self->state);
        auto promise = self->make_response_promise<uint32_t>();
        self->state.waiting_metald.push_back({std::move(op), promise});
        start_commit(self);
        return promise;
      },
      // Passivation: idle ledgers hold no memory; RocksDB holds their state.
      [self](idle_check_atom) { check_idle(self); },
  };
}

}  // namespace

customer_actor spawn_customer_ledger(caf::actor_system& system, std::string customer_id,
                                     std::shared_ptr<storage::ledger_store> store,
                                     std::shared_ptr<actor_gauges> gauges,
                                     std::chrono::seconds idle, int64_t max_window_ns,
                                     std::shared_ptr<const shard_terms> terms) {
  return system.spawn(customer_ledger, std::move(customer_id), std::move(gauges), idle,
                      max_window_ns, std::move(store), std::move(terms));
}

}  // namespace billing::actors
