#include "actors/customer_ledger.hpp"

#include <fmt/format.h>

#include <deque>
#include <map>

#include "actors/errors.hpp"

namespace billing::actors {
namespace {

using outcomes = std::vector<model::item_outcome>;

struct pending_part {
  model::customer_part part;
  caf::typed_response_promise<outcomes> promise;
};

// Parts are committed in groups: while one group's write is in flight, new
// parts wait; when it is durable, all waiting parts form the next group. So a
// busy customer costs one store commit per group, and the dedup check of a
// group always sees every earlier group durably stored.
struct ledger_state {
  std::string customer_id;
  std::shared_ptr<storage::ledger_store> store;
  std::deque<pending_part> waiting;
  std::vector<pending_part> committing;
  std::vector<outcomes> committing_outcomes;
  uint64_t commit_id = 0;
  bool in_flight = false;

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

// Judges every window of the group and collects the writes, with one audit
// entry per part (in the same write, so the record exists exactly when the
// part's windows do). Returns the
// outcomes per part, in the parts' order.
result<std::vector<outcomes>> judge_group(const ledger_state& st, storage::write_set& writes) {
  std::vector<model::window_identity> identities;
  for (const auto& pending : st.committing) {
    for (const auto& window : pending.part.windows) {
      identities.push_back(model::window_identity::of(window));
    }
  }
  auto stored = st.store->find_stored(identities);
  if (!stored.ok()) return stored.error();

  // Windows accepted earlier in this same group, by identity.
  std::map<model::window_identity, const model::usage_window*> accepted_in_group;
  std::vector<outcomes> group_outcomes;
  size_t flat = 0;
  for (const auto& pending : st.committing) {
    outcomes part_outcomes;
    part_outcomes.reserve(pending.part.windows.size());
    for (size_t i = 0; i < pending.part.windows.size(); ++i, ++flat) {
      const auto& window = pending.part.windows[i];
      const uint32_t index = pending.part.indices[i];
      const model::usage_window* existing = nullptr;
      if (stored.value()[flat]) {
        existing = &*stored.value()[flat];
      } else if (auto it = accepted_in_group.find(identities[flat]);
                 it != accepted_in_group.end()) {
        existing = it->second;
      }
      if (existing == nullptr) {
        writes.put_window(window);
        accepted_in_group.emplace(identities[flat], &window);
        part_outcomes.push_back(model::item_outcome::accepted(index));
      } else if (existing->same_billed_values(window)) {
        part_outcomes.push_back(model::item_outcome::duplicate(index));
      } else {
        writes.put_conflict({pending.part.meta, window, *existing});
        part_outcomes.push_back(model::item_outcome::rejected(
            index, model::reject_reason::conflicting_duplicate, describe_conflict(*existing)));
      }
    }
    writes.put_ingest_record(ingest_record_of(pending.part, part_outcomes));
    group_outcomes.push_back(std::move(part_outcomes));
  }
  return group_outcomes;
}

void fail_committing(ledger_state& st, const status& error) {
  for (auto& pending : st.committing) pending.promise.deliver(to_error(error));
  st.committing.clear();
  st.committing_outcomes.clear();
}

void start_commit(ledger_pointer self) {
  auto& st = self->state;
  if (st.in_flight || st.waiting.empty()) return;
  st.committing.assign(std::make_move_iterator(st.waiting.begin()),
                       std::make_move_iterator(st.waiting.end()));
  st.waiting.clear();

  storage::write_set writes;
  auto judged = judge_group(st, writes);
  if (!judged.ok()) {
    fail_committing(st, judged.error());
    return;
  }
  st.committing_outcomes = std::move(judged.value());
  st.in_flight = true;
  const uint64_t id = ++st.commit_id;
  customer_actor me = caf::actor_cast<customer_actor>(self);
  st.store->commit(std::move(writes), [me, id](status done) {
    caf::anon_send(me, committed_atom::value, id, static_cast<uint8_t>(done.code()),
                   done.message());
  });
}

customer_actor::behavior_type customer_ledger(ledger_pointer self, std::string customer_id,
                                              std::shared_ptr<storage::ledger_store> store) {
  self->state.customer_id = std::move(customer_id);
  self->state.store = std::move(store);
  return {
      [self](append_atom, model::customer_part& part) -> caf::result<outcomes> {
        auto promise = self->make_response_promise<outcomes>();
        self->state.waiting.push_back({std::move(part), promise});
        start_commit(self);
        return promise;
      },
      [self](committed_atom, uint64_t id, uint8_t code, std::string& message) {
        auto& st = self->state;
        if (!st.in_flight || id != st.commit_id) return;  // cannot happen; be safe
        st.in_flight = false;
        const status done{static_cast<status_code>(code), std::move(message)};
        if (done.ok()) {
          for (size_t i = 0; i < st.committing.size(); ++i) {
            st.committing[i].promise.deliver(std::move(st.committing_outcomes[i]));
          }
          st.committing.clear();
          st.committing_outcomes.clear();
        } else {
          fail_committing(st, done);
        }
        start_commit(self);
      },
  };
}

}  // namespace

customer_actor spawn_customer_ledger(caf::actor_system& system, std::string customer_id,
                                     std::shared_ptr<storage::ledger_store> store) {
  return system.spawn(customer_ledger, std::move(customer_id), std::move(store));
}

}  // namespace billing::actors
