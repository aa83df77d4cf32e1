#include "cluster/replication/replicator_state.hpp"

#include <fmt/format.h>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <algorithm>
#include <functional>
#include <set>

#include "actors/errors.hpp"
#include "cluster/fence.hpp"
#include "observability/log.hpp"

namespace billing::cluster::replication::detail {

using clock = std::chrono::steady_clock;

// ---- recovery (a new leader) ----

struct gathering {
  std::map<std::string, log_position> positions;
  size_t synced = 0;  // answers from replicas that hold what they acknowledged
  size_t pending = 0;
  bool concluded = false;
};

// The led shard if it is still at `epoch` in attempt `attempt`.
led_shard* attempt_of(pointer self, uint32_t shard_number, uint64_t epoch, uint64_t attempt) {
  auto found = self->state.led.find(shard_number);
  if (found == self->state.led.end() || found->second.epoch != epoch ||
      found->second.attempt != attempt || found->second.recovered) {
    return nullptr;
  }
  return &found->second;
}

void attempt_failed(pointer self, led_shard& shard, uint32_t shard_number, const std::string& why) {
  shard.recovering = false;
  shard.retry_at = clock::now() + self->state.settings.tick * 2;
  observability::log_info("replication: shard {}: recovery at epoch {} waits: {}", shard_number,
                          shard.epoch, why);
}

void finish_recovery(pointer self, uint32_t shard_number, led_shard& shard, log_position mine) {
  auto& st = self->state;
  shard.last = mine;
  shard.committed = 0;
  shard.recovered_seq = mine.seq;
  shard.recovered = true;
  // It holds everything a majority acknowledged now, whatever it lost before.
  mark_synced(self, shard_number);
  shard.recovering = false;
  st.positions.erase(shard_number);
  st.terms->serve(shard_number, shard.epoch);
  st.gauges->shards_recovering--;
  st.gauges->shards_led++;
  st.gauges->recoveries++;
  observability::log_info("replication: shard {}: led here at epoch {} (log at {}.{})",
                          shard_number, shard.epoch, mine.epoch, mine.seq);
  pump(self, shard_number);
}

void conclude(pointer self, uint32_t shard_number, uint64_t epoch, uint64_t attempt,
              std::map<std::string, log_position> positions);

// Applies `entries` (following `mine`) here, then concludes again.
void apply_fetched(pointer self, uint32_t shard_number, uint64_t epoch, uint64_t attempt,
                   std::map<std::string, log_position> positions, std::vector<log_entry> entries) {
  const log_position reached{entries.back().epoch, entries.back().seq};
  storage::write_set writes;
  writes.apply_as_follower(shard_number, std::move(entries));
  status applied = self->state.store->commit_and_wait(std::move(writes));
  led_shard* shard = attempt_of(self, shard_number, epoch, attempt);
  if (shard == nullptr) return;
  if (!applied.ok()) {
    attempt_failed(self, *shard, shard_number, applied.message());
    return;
  }
  positions[self->state.settings.self_id] = reached;
  conclude(self, shard_number, epoch, attempt, std::move(positions));
}

void pull_snapshot(pointer self, uint32_t shard_number, uint64_t epoch, uint64_t attempt,
                   const std::string& from, std::map<std::string, log_position> positions) {
  with_peer(self, from, [=](const caf::actor* remote) mutable {
    led_shard* shard = attempt_of(self, shard_number, epoch, attempt);
    if (shard == nullptr) return;
    if (remote == nullptr) {
      attempt_failed(self, *shard, shard_number, fmt::format("node {} is unreachable", from));
      return;
    }
    observability::log_info("replication: shard {}: taking a snapshot from node {}", shard_number,
                            from);
    self->request(*remote, caf::infinite, pull_atom::value, shard_number, epoch,
                  caf::actor_cast<caf::actor>(self))
        .then(
            [=](log_position at) mutable {
              if (attempt_of(self, shard_number, epoch, attempt) == nullptr) return;
              positions[self->state.settings.self_id] = at;
              conclude(self, shard_number, epoch, attempt, std::move(positions));
            },
            [=](caf::error& error) {
              if (led_shard* again = attempt_of(self, shard_number, epoch, attempt)) {
                attempt_failed(self, *again, shard_number, caf::to_string(error));
              }
            });
  });
}

// A majority answered: catch up with the most advanced of them, then lead.
void conclude(pointer self, uint32_t shard_number, uint64_t epoch, uint64_t attempt,
              std::map<std::string, log_position> positions) {
  led_shard* shard = attempt_of(self, shard_number, epoch, attempt);
  if (shard == nullptr) return;
  const std::string& self_id = self->state.settings.self_id;
  const log_position mine = positions[self_id];
  auto best = std::max_element(positions.begin(), positions.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  if (self->state.installing.count(shard_number) != 0) {
    // Part of the shard is erased here: take it whole from the best other
    // replica, whatever the positions say (ours was reset to empty).
    auto other =
        std::max_element(positions.begin(), positions.end(), [&](const auto& a, const auto& b) {
          if (a.first == self_id) return true;
          if (b.first == self_id) return false;
          return a.second < b.second;
        });
    if (other == positions.end() || other->first == self_id) {
      attempt_failed(self, *shard, shard_number,
                     "its snapshot install did not finish and no other replica answered");
      return;
    }
    pull_snapshot(self, shard_number, epoch, attempt, other->first, std::move(positions));
    return;
  }
  if (best->second == mine) {
    finish_recovery(self, shard_number, *shard, mine);
    return;
  }
  const std::string from = best->first;
  if (mine.seq >= best->second.seq) {
    // Our log is longer but older (entries a deposed leader never got
    // acknowledged): take the shard as the best replica holds it.
    pull_snapshot(self, shard_number, epoch, attempt, from, std::move(positions));
    return;
  }
  with_peer(self, from, [=](const caf::actor* remote) mutable {
    led_shard* again = attempt_of(self, shard_number, epoch, attempt);
    if (again == nullptr) return;
    if (remote == nullptr) {
      attempt_failed(self, *again, shard_number, fmt::format("node {} is unreachable", from));
      return;
    }
    // From our last entry on: its epoch there tells whether our log is a
    // prefix of theirs.
    self->request(*remote, self->state.settings.peer_timeout, fetch_atom::value, shard_number,
                  epoch, std::max<uint64_t>(mine.seq, 1))
        .then(
            [=](std::vector<log_entry>& entries) mutable {
              if (attempt_of(self, shard_number, epoch, attempt) == nullptr) return;
              const bool follows =
                  !entries.empty() && (mine.seq == 0 ? entries.front().seq == 1
                                                     : entries.front().seq == mine.seq &&
                                                           entries.front().epoch == mine.epoch);
              if (!follows) {
                pull_snapshot(self, shard_number, epoch, attempt, from, std::move(positions));
                return;
              }
              if (mine.seq > 0) entries.erase(entries.begin());
              if (entries.empty()) {
                pull_snapshot(self, shard_number, epoch, attempt, from, std::move(positions));
                return;
              }
              apply_fetched(self, shard_number, epoch, attempt, std::move(positions),
                            std::move(entries));
            },
            [=](caf::error& error) {
              if (led_shard* failed = attempt_of(self, shard_number, epoch, attempt)) {
                attempt_failed(self, *failed, shard_number, caf::to_string(error));
              }
            });
  });
}

void recover(pointer self, uint32_t shard_number) {
  auto& st = self->state;
  auto found = st.led.find(shard_number);
  if (found == st.led.end()) return;
  auto& shard = found->second;
  if (shard.recovered || shard.recovering || clock::now() < shard.retry_at) return;
  shard.recovering = true;
  const uint64_t attempt = ++shard.attempt;
  const uint64_t epoch = shard.epoch;
  auto gathered = std::make_shared<gathering>();
  st.positions.erase(shard_number);
  gathered->positions[st.settings.self_id] = local_position(self, shard_number);
  gathered->synced = st.unsynced.count(shard_number) == 0 ? 1 : 0;
  const size_t needed = majority(shard.replicas.size());
  const size_t replicas = shard.replicas.size();
  // Any log may be the best (every replica's log is a prefix of some
  // leader's), but only a synced replica counts toward the majority that
  // must hold every acknowledged entry: one that lost its disk answers an
  // empty log for entries it helped acknowledge. With every replica
  // answering, none can be missing (a new cluster: all of them unsynced).
  auto check = [self, shard_number, epoch, attempt, gathered, needed, replicas] {
    if (gathered->concluded) return;
    if (gathered->synced >= needed || gathered->positions.size() == replicas) {
      gathered->concluded = true;
      conclude(self, shard_number, epoch, attempt, gathered->positions);
    } else if (gathered->pending == 0) {
      gathered->concluded = true;
      if (led_shard* again = attempt_of(self, shard_number, epoch, attempt)) {
        attempt_failed(self, *again, shard_number,
                       fmt::format("{} of {} replicas answered ({} synced), {} synced needed",
                                   gathered->positions.size(), again->replicas.size(),
                                   gathered->synced, needed));
      }
    }
  };
  for (const auto& node : shard.replicas) {
    if (node != st.settings.self_id) gathered->pending++;
  }
  check();
  for (const auto& node : std::vector<std::string>(shard.replicas)) {
    if (node == st.settings.self_id) continue;
    with_peer(self, node, [=](const caf::actor* remote) {
      if (remote == nullptr) {
        gathered->pending--;
        check();
        return;
      }
      self->request(*remote, self->state.settings.peer_timeout, position_atom::value, shard_number,
                    epoch)
          .then(
              [=](log_position theirs, bool synced) {
                gathered->pending--;
                gathered->positions[node] = theirs;
                gathered->synced += synced ? 1 : 0;
                check();
              },
              [=](caf::error&) {
                gathered->pending--;
                check();
              });
    });
  }
}

}  // namespace billing::cluster::replication::detail
