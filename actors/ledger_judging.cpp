#include "actors/ledger_state.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_map>

#include "actors/errors.hpp"
#include "model/calendar.hpp"
#include "model/month_cost.hpp"
#include "model/rollup.hpp"
#include "storage/billing_records.hpp"

namespace billing::actors::ledger_internal {
namespace {

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

}  // namespace

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

// The durable state of `vm_id`: from the cache, else read from the store.
result<model::vm_state> durable_vm_state(ledger_state& st, const std::string& vm_id) {
  if (auto cached = st.vm_states.values.find(vm_id); cached != st.vm_states.values.end()) {
    return cached->second;
  }
  auto stored = st.store->find_vm_state(st.customer_id, vm_id);
  if (!stored.ok()) return stored.error();
  return stored.value().value_or(model::vm_state{});
}

// Applies the group's metald ops in order, each VM's state read once from the
// store (durable: no commit is in flight) and then carried through the group.
// Each op's derived window (cut at hours) and new state go into `writes`, so
// usage and watermark become durable together. An op that cannot be applied
// (a sum past 2^64-1) fails alone.
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
    op_outcomes.emplace_back(applied->new_samples);
    st.committing_usage.push_back(std::move(usage));
  }
  return op_outcomes;
}

}  // namespace billing::actors::ledger_internal
