#include "actors/customer_ledger.hpp"

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

using outcomes = std::vector<model::item_outcome>;

struct pending_part {
  model::customer_part part;
  caf::typed_response_promise<outcomes> promise;
};

// What one part of a committing group adds, for its live update.
struct part_usage {
  model::usage_totals delta;        // the accepted windows, whole
  model::usage_totals month_share;  // their share of the tracked month
  // What they add to the month's cost (while someone subscribes).
  std::optional<model::month_cost::additions> cost_added;
  bool stored_any = false;
};

struct pending_metald {
  model::metald_op op;
  caf::typed_response_promise<uint32_t> promise;
};

struct pending_subscriber {
  subscriber_actor subscriber;
  caf::typed_response_promise<model::usage_update> promise;
};

// Values of keys only this ledger writes, exactly as durably stored: a value
// read once (no commit of this ledger is in flight while a group is judged),
// or written by a group that became durable, stays true until this ledger
// changes it. A group stages the values it writes: once durable they replace
// the cached ones; if the write fails they are dropped, since it may or may
// not reappear from the WAL, and the next group reads them from the store.
// Passivation drops the cache with the actor; a respawn starts empty.
template <class Map>
struct durable_cache {
  Map values;
  Map staged;

  // Past `cap` values, only the group just written stays cached.
  void commit_staged(size_t cap = SIZE_MAX) {
    if (values.size() + staged.size() > cap) values.clear();
    for (auto& [key, value] : staged) values.insert_or_assign(key, std::move(value));
    staged.clear();
  }
  void discard_staged() {
    for (const auto& [key, value] : staged) values.erase(key);
    staged.clear();
  }
};

// At most this many rollup totals stay cached per customer (about 250 bytes
// each): the current hour, day and month of 1,300 VMs.
constexpr size_t max_cached_rollups = 4096;

// Parts are committed in groups: while one group's write is in flight, new
// parts wait; when it is durable, all waiting parts form the next group. So a
// busy customer costs one store commit per group, and the dedup check of a
// group always sees every earlier group durably stored.
//
// Live usage: month_to_date is kept only while someone subscribes. It is
// loaded from the monthly rollups when no commit is in flight (a subscriber
// arriving mid-commit waits for it), so the snapshot and the updates that
// follow never count an ingest twice or miss one.
struct ledger_state {
  // This ledger in billing_actors{kind="customer_ledgers"} while it lives.
  gauge_share alive;
  std::string customer_id;
  std::shared_ptr<storage::ledger_store> store;
  std::deque<pending_part> waiting;
  std::vector<pending_part> committing;
  std::vector<outcomes> committing_outcomes;
  // Usage per committing part, then per committing metald op.
  std::vector<part_usage> committing_usage;
  std::deque<pending_metald> waiting_metald;
  std::vector<pending_metald> committing_metald;
  std::vector<result<uint32_t>> committing_metald_outcomes;
  // metald VM states (the vm_state keys) and rollup totals of this customer,
  // so that a group reads RocksDB only for VMs and buckets it has not seen.
  durable_cache<std::unordered_map<std::string, model::vm_state>> vm_states;
  durable_cache<model::rollup_accumulator::bucket_map> rollup_totals;
  uint64_t commit_id = 0;
  bool in_flight = false;
  // Replicated (issue 16): the shards this node leads, and the epoch the
  // caches above were filled at (another epoch: this node may have followed
  // the shard meanwhile, so they are read again).
  std::shared_ptr<const shard_terms> terms;
  uint64_t cached_epoch = 0;

  std::vector<subscriber_actor> subscribers;
  std::vector<pending_subscriber> waiting_subscribers;
  int64_t month_start_ns = 0;
  model::usage_totals month_to_date;
  // The month's usage cost, loaded and kept with month_to_date.
  model::month_cost cost;
  // How far before a split hour its windows may start (the longest window).
  int64_t max_window_ns = 0;
  uint64_t sequence = 0;
  // Passivation: how long the ledger may sit idle (0: forever) and when it
  // last got work. One timer per idle period, not one per message.
  std::chrono::seconds idle{0};
  std::chrono::steady_clock::time_point last_work;

  ledger_state() = default;
  ledger_state(const ledger_state&) = delete;
  ledger_state& operator=(const ledger_state&) = delete;
  // Parts still waiting when the ledger stops are no longer queued.
  ~ledger_state() { alive.add(&actor_gauges::queued_parts, -static_cast<int64_t>(waiting.size())); }

  static inline const char* name = "customer_ledger";
};

using ledger_pointer = customer_actor::stateful_pointer<ledger_state>;

std::string describe_conflict(const model::usage_window& stored) {
  return fmt::format(
      "a window with this identity is already stored with other values (cpu_time_nanos={}, "
      "memory_bytes_seconds={}, network_tx_bytes={}); the stored window is kept",
      stored.cpu_time_nanos, stored.memory_bytes_seconds, stored.network_tx_bytes);
}

// The audit entry of one part: which batch, from where, with what outcome.
storage::ingest_record ingest_record_of(const model::customer_part& part, const outcomes& judged) {
  storage::ingest_record record{part.customer_id, part.meta, 0, 0, 0};
  for (const auto& outcome : judged) {
    switch (outcome.status) {
      case model::item_status::accepted:
        ++record.accepted;
        break;
      case model::item_status::duplicate:
        ++record.duplicate;
        break;
      case model::item_status::rejected:
        ++record.rejected;
        break;
    }
  }
  return record;
}

const model::usage_window& as_window(const model::usage_window& window) {
  return window;
}
const model::usage_window& as_window(const model::usage_window* window) {
  return *window;
}

// Caches the stored totals of every rollup bucket `windows` add to, in one
// batched read, so that each window is judged against them before it is
// accepted (and put_rollup_totals finds every bucket it writes cached).
template <class Windows>
status load_rollup_totals(ledger_state& st, const Windows& windows) {
  auto& cached = st.rollup_totals.values;
  std::set<model::rollup_id_view, model::rollup_id_less> seen;
  std::vector<model::rollup_id> unread;
  for (const auto& window : windows) {
    for (const auto& id : model::rollup_buckets_of(as_window(window))) {
      if (cached.find(id) != cached.end() || !seen.insert(id).second) continue;
      unread.push_back(
          {id.grain, id.bucket_start_ns, std::string(id.region), std::string(id.vm_id)});
    }
  }
  if (unread.empty()) return status::ok_status();
  auto stored = st.store->find_rollups(st.customer_id, unread);
  if (!stored.ok()) return stored.error();
  for (size_t i = 0; i < unread.size(); ++i) {
    cached.emplace(std::move(unread[i]), stored.value()[i].value_or(model::rollup_value{}));
  }
  return status::ok_status();
}

constexpr std::string_view total_out_of_range_message =
    "storing this window would take a usage total of its VM past 2^127-1";

// Adds an accepted window (already in `rollups`) to the group's writes and
// live usage. These sums are bounded by the rollups just checked, so a
// failure here is a defect (internal), and fails the group.
status accept_window(ledger_state& st, const model::usage_window& window,
                     storage::write_set& writes, part_usage& usage) {
  if (status added = usage.delta.add(model::usage_totals::of(window)); !added.ok()) {
    return {status_code::internal, added.message()};
  }
  if (!st.subscribers.empty()) {
    const int64_t month_end =
        model::next_bucket_start(model::granularity::month, st.month_start_ns);
    auto share = model::usage_within(window, st.month_start_ns, month_end);
    if (status added = usage.month_share.add(share); !added.ok()) {
      return {status_code::internal, added.message()};
    }
    if (!usage.cost_added) usage.cost_added = st.cost.start_additions();
    if (status added = usage.cost_added->add(window); !added.ok()) {
      return {status_code::internal, added.message()};
    }
  }
  usage.stored_any = true;
  writes.put_window(window);
  return status::ok_status();
}

// Judges every window of the group and collects the writes: raw windows,
// dedup entries, the rollups they add (into `rollups`) and one audit entry
// per part, all in one write_set (so the record exists exactly when the
// part's windows do). Returns the outcomes per part, in the parts' order.
// For each window (flat over the group), the flat index of the first earlier
// window with the same identity, or `none`. Sorting indices is cheaper than a
// map of identities per window, and repeats within a group are rare.
std::vector<size_t> earlier_repeats(const std::vector<model::window_identity>& identities) {
  constexpr size_t none = SIZE_MAX;
  std::vector<size_t> order(identities.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return identities[a] < identities[b]; });
  std::vector<size_t> first_of(identities.size(), none);
  for (size_t i = 1; i < order.size(); ++i) {
    if (identities[order[i]] != identities[order[i - 1]]) continue;
    const size_t first = first_of[order[i - 1]];
    first_of[order[i]] = first == none ? order[i - 1] : first;
  }
  return first_of;
}

result<std::vector<outcomes>> judge_group(ledger_state& st, storage::write_set& writes,
                                          model::rollup_accumulator& rollups) {
  std::vector<model::window_identity> identities;
  std::vector<const model::usage_window*> flat_windows;
  for (const auto& pending : st.committing) {
    for (const auto& window : pending.part.windows) {
      identities.push_back(model::window_identity::of(window));
      flat_windows.push_back(&window);
    }
  }
  auto stored = st.store->find_stored(identities);
  if (!stored.ok()) return stored.error();
  if (status loaded = load_rollup_totals(st, flat_windows); !loaded.ok()) return loaded;
  // A repeat of a window that is not stored is judged against the first
  // one, which this group accepts (or the whole group fails).
  const auto repeats = earlier_repeats(identities);

  std::vector<outcomes> group_outcomes;
  st.committing_usage.assign(st.committing.size(), {});
  size_t flat = 0;
  for (size_t p = 0; p < st.committing.size(); ++p) {
    const auto& part = st.committing[p].part;
    auto& usage = st.committing_usage[p];
    outcomes part_outcomes;
    part_outcomes.reserve(part.windows.size());
    for (size_t i = 0; i < part.windows.size(); ++i, ++flat) {
      const auto& window = part.windows[i];
      const uint32_t index = part.indices[i];
      const model::usage_window* existing = nullptr;
      if (stored.value()[flat]) {
        existing = &*stored.value()[flat];
      } else if (repeats[flat] != SIZE_MAX) {
        existing = flat_windows[repeats[flat]];
      }
      if (existing == nullptr) {
        // Past kUsageSumMax of a stored total (loaded above): refused alone
        // (REJECT_REASON_TOTAL_OUT_OF_RANGE), nothing added, never failing the group.
        if (status added = rollups.add(window, &st.rollup_totals.values); !added.ok()) {
          if (added.code() != status_code::out_of_range) return added;
          part_outcomes.push_back(
              model::item_outcome::rejected(index, model::reject_reason::total_out_of_range,
                                            std::string(total_out_of_range_message)));
          continue;
        }
        if (status added = accept_window(st, window, writes, usage); !added.ok()) return added;
        part_outcomes.push_back(model::item_outcome::accepted(index));
      } else if (existing->same_billed_values(window)) {
        part_outcomes.push_back(model::item_outcome::duplicate(index));
      } else {
        writes.put_conflict({part.meta, window, *existing});
        part_outcomes.push_back(model::item_outcome::rejected(
            index, model::reject_reason::conflicting_duplicate, describe_conflict(*existing)));
      }
    }
    writes.put_ingest_record(ingest_record_of(part, part_outcomes));
    group_outcomes.push_back(std::move(part_outcomes));
  }
  return group_outcomes;
}

// Applies the group's metald ops in order, each VM's state read once from the
// store (durable: no commit is in flight) and then carried through the group.
// Each op's derived window (cut at hours) and new state go into `writes`, so
// usage and watermark become durable together. An op that cannot be applied
// (a sum past 2^64-1) fails alone.
// The durable state of `vm_id`: from the cache, else read from the store.
result<model::vm_state> durable_vm_state(ledger_state& st, const std::string& vm_id) {
  if (auto cached = st.vm_states.values.find(vm_id); cached != st.vm_states.values.end()) {
    return cached->second;
  }
  auto stored = st.store->find_vm_state(st.customer_id, vm_id);
  if (!stored.ok()) return stored.error();
  return stored.value().value_or(model::vm_state{});
}

result<std::vector<result<uint32_t>>> judge_metald(ledger_state& st, storage::write_set& writes,
                                                   model::rollup_accumulator& rollups) {
  auto& states = st.vm_states.staged;
  std::vector<result<uint32_t>> op_outcomes;
  for (const auto& pending : st.committing_metald) {
    const auto& op = pending.op;
    auto found = states.find(op.vm_id);
    if (found == states.end()) {
      auto durable = durable_vm_state(st, op.vm_id);
      if (!durable.ok()) return durable.error();
      found = states.emplace(op.vm_id, std::move(durable).value()).first;
    }
    model::vm_state next = found->second;
    auto applied = model::apply_op(next, op);
    part_usage usage;
    if (applied.ok() && applied->window) {
      // The op's pieces are added together or not at all: past 2^127-1 the op
      // fails alone, and the VM's state does not move.
      const auto pieces = model::split_at_hours(*applied->window);
      model::rollup_accumulator op_rollups;
      status added = load_rollup_totals(st, pieces);
      for (const auto& piece : pieces) {
        if (added.ok()) added = op_rollups.add(piece);
      }
      if (added.ok()) added = rollups.add_all(op_rollups, &st.rollup_totals.values);
      if (!added.ok() && added.code() != status_code::out_of_range) return added;
      if (!added.ok()) {
        applied = status{status_code::out_of_range, std::string(total_out_of_range_message)};
      } else {
        for (const auto& piece : pieces) {
          if (status accepted = accept_window(st, piece, writes, usage); !accepted.ok()) {
            return accepted;
          }
        }
      }
    }
    if (!applied.ok()) {
      op_outcomes.push_back(applied.error());
      st.committing_usage.push_back({});
      continue;
    }
    if (applied->gap) writes.put_metald_gap(st.customer_id, op.vm_id, next.region, *applied->gap);
    if (applied->new_samples > 0) {
      writes.put_vm_state(st.customer_id, op.vm_id, next);
      found->second = std::move(next);
    }
    op_outcomes.push_back(applied->new_samples);
    st.committing_usage.push_back(std::move(usage));
  }
  return op_outcomes;
}

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
