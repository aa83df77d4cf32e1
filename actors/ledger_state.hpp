// The state of a customer ledger actor (actors/customer_ledger.hpp) and the
// judging of a committing group against it, shared by customer_ledger.cpp
// (the actor: queues, commits, live updates) and ledger_judging.cpp (dedup,
// conflicts, rollup bounds, metald ops). Not for use outside actors/.
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/customer_ledger.hpp"
#include "model/month_cost.hpp"
#include "model/rollup.hpp"

namespace billing::actors::ledger_internal {

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

// Judges the committing parts (dedup against the store and within the
// group, conflicts, rollup bounds): their outcomes; accepted windows, their
// rollups and audit records go into `writes` and `rollups`.
result<std::vector<outcomes>> judge_group(ledger_state& st, storage::write_set& writes,
                                          model::rollup_accumulator& rollups);

// Applies the committing metald ops in order: each op's outcome (its count
// of windows), its windows and VM state into `writes` and `rollups`.
result<std::vector<result<uint32_t>>> judge_metald(ledger_state& st, storage::write_set& writes,
                                                   model::rollup_accumulator& rollups);

}  // namespace billing::actors::ledger_internal
