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

#include "cluster/replication/shard_data.hpp"

namespace billing::cluster::replication::detail {

using clock = std::chrono::steady_clock;

// ---- leader ----

void release_waits(led_shard& shard) {
  while (!shard.waits.empty() && shard.waits.front().wait.seq <= shard.committed) {
    auto done = std::move(shard.waits.front().wait.on_done);
    shard.waits.pop_front();
    if (done) done(status::ok_status());
  }
}

void fail_waits(led_shard& shard, const std::string& why, replication_gauges& gauges) {
  for (auto& waiting : shard.waits) {
    gauges.majority_timeouts++;
    if (waiting.wait.on_done) waiting.wait.on_done(status{status_code::deadline_exceeded, why});
  }
  shard.waits.clear();
}

void advance_commit(pointer self, led_shard& shard) {
  std::vector<uint64_t> held{shard.last.seq};
  for (const auto& node : shard.replicas) {
    if (node == self->state.settings.self_id) continue;
    auto found = shard.followers.find(node);
    held.push_back(found != shard.followers.end() && found->second.known ? found->second.match : 0);
  }
  std::sort(held.begin(), held.end(), std::greater<>());
  const uint64_t majority_holds = held[majority(shard.replicas.size()) - 1];
  if (majority_holds > shard.committed) shard.committed = majority_holds;
  release_waits(shard);
  // The in-memory tail need not reach below what every follower holds.
  uint64_t lowest = shard.last.seq;
  for (const auto& [node, state] : shard.followers) {
    lowest = std::min(lowest, state.known ? state.match : 0);
  }
  while (!shard.tail.empty() && (shard.tail.front().seq <= lowest ||
                                 shard.tail.size() > self->state.settings.tail_entries)) {
    shard.tail.pop_front();
  }
}

void step_down(pointer self, uint32_t shard_number, const std::string& why) {
  auto& st = self->state;
  auto found = st.led.find(shard_number);
  if (found == st.led.end()) return;
  st.terms->serve(shard_number, 0);
  if (found->second.recovered) {
    st.gauges->shards_led--;
  } else {
    st.gauges->shards_recovering--;
  }
  fail_waits(found->second,
             fmt::format("stored on this node but not acknowledged by a majority of shard {}'s "
                         "replicas: {}; retry",
                         shard_number, why),
             *st.gauges);
  observability::log_info("replication: shard {}: no longer led here ({})", shard_number, why);
  st.led.erase(found);
  st.positions.erase(shard_number);  // read again: it changed as the leader wrote
}

bool admit_epoch(pointer self, uint32_t shard, uint64_t epoch) {
  auto& st = self->state;
  auto& promised = st.promised[shard];
  if (epoch < promised) {
    st.gauges->stale_refused++;
    return false;
  }
  promised = epoch;
  if (auto led = st.led.find(shard); led != st.led.end() && led->second.epoch < epoch) {
    step_down(self, shard, fmt::format("epoch {} is newer", epoch));
  }
  return true;
}

// The entries of the led shard from `from` on (memory tail, else the log).
std::vector<log_entry> entries_from(pointer self, uint32_t shard_number, const led_shard& shard,
                                    uint64_t from) {
  const auto& settings = self->state.settings;
  std::vector<log_entry> entries;
  if (!shard.tail.empty() && shard.tail.front().seq <= from) {
    size_t bytes = 0;
    for (const auto& entry : shard.tail) {
      if (entry.seq < from) continue;
      entries.push_back(entry);
      bytes += entry.mutations.size();
      if (entries.size() >= settings.append_entries || bytes >= settings.append_bytes) break;
    }
    return entries;
  }
  auto read = self->state.store->read_log(shard_number, from, settings.append_entries,
                                          settings.append_bytes);
  if (!read.ok()) {
    observability::log_warn("replication: shard {}: {}", shard_number, read.error().message());
    return {};
  }
  return std::move(read).value();
}

// The epoch of our entry `seq`, if our log still holds it (0: the start).
std::optional<uint64_t> epoch_at(pointer self, uint32_t shard_number, const led_shard& shard,
                                 uint64_t seq) {
  if (seq == 0) return 0;
  if (seq == shard.last.seq) return shard.last.epoch;
  auto entries = entries_from(self, shard_number, shard, seq);
  if (entries.empty() || entries.front().seq != seq) return std::nullopt;
  return entries.front().epoch;
}

void send_snapshot(pointer self, uint32_t shard_number, const std::string& node);

// A follower answered with its position `theirs` (not following ours).
void resync(pointer self, uint32_t shard_number, const std::string& node, log_position theirs) {
  auto& shard = self->state.led.at(shard_number);
  auto& state = shard.followers[node];
  const auto ours = epoch_at(self, shard_number, shard, theirs.seq);
  if (theirs.seq <= shard.last.seq && ours && *ours == theirs.epoch &&
      (theirs.seq == shard.last.seq ||
       !entries_from(self, shard_number, shard, theirs.seq + 1).empty())) {
    state.known = true;
    state.match = theirs.seq;
    return;
  }
  // Empty, diverged, or behind what our log still holds.
  send_snapshot(self, shard_number, node);
}

void ship(pointer self, uint32_t shard_number, const std::string& node) {
  auto& st = self->state;
  auto& shard = st.led.at(shard_number);
  auto& state = shard.followers[node];
  if (state.in_flight || state.snapshotting || clock::now() < state.retry_at) return;
  if (state.known && state.match >= shard.last.seq) return;
  log_position prev = shard.last;
  std::vector<log_entry> entries;
  if (state.known) {
    entries = entries_from(self, shard_number, shard, state.match + 1);
    if (entries.empty() || entries.front().seq != state.match + 1) {
      send_snapshot(self, shard_number, node);
      return;
    }
    auto prev_epoch = epoch_at(self, shard_number, shard, state.match);
    if (!prev_epoch) {
      send_snapshot(self, shard_number, node);
      return;
    }
    prev = {*prev_epoch, state.match};
  }
  state.in_flight = true;
  const uint64_t epoch = shard.epoch;
  const uint64_t sync_floor = std::max(shard.committed, shard.recovered_seq);
  const uint64_t sent_up_to = entries.empty() ? prev.seq : entries.back().seq;
  with_peer(self, node, [=](const caf::actor* remote) mutable {
    auto settle = [self, shard_number, node, epoch]() -> follower* {
      auto led = self->state.led.find(shard_number);
      if (led == self->state.led.end() || led->second.epoch != epoch) return nullptr;
      auto& again = led->second.followers[node];
      again.in_flight = false;
      return &again;
    };
    if (remote == nullptr) {
      if (auto* again = settle()) again->retry_at = clock::now() + self->state.settings.tick;
      return;
    }
    self->request(*remote, self->state.settings.peer_timeout, append_atom::value, shard_number,
                  epoch, prev, std::move(entries), sync_floor)
        .then(
            [=](uint8_t verdict, log_position theirs) {
              follower* again = settle();
              if (again == nullptr) return;
              auto& led = self->state.led.at(shard_number);
              if (verdict == append_applied) {
                self->state.gauges->entries_shipped += sent_up_to - prev.seq;
                again->known = true;
                again->match = sent_up_to;
                advance_commit(self, led);
              } else if (verdict == append_stale) {
                step_down(self, shard_number, fmt::format("node {} knows a newer epoch", node));
                return;
              } else if (verdict == append_needs_snapshot) {
                send_snapshot(self, shard_number, node);
              } else {
                resync(self, shard_number, node, theirs);
              }
              pump(self, shard_number);
            },
            [=](caf::error&) {
              // Unanswered or refused in transit: connect afresh next time.
              if (follower* again = settle()) {
                again->retry_at = clock::now() + self->state.settings.tick;
                forget_peer(self, node);
              }
            });
  });
}

void pump(pointer self, uint32_t shard_number) {
  auto found = self->state.led.find(shard_number);
  if (found == self->state.led.end() || !found->second.recovered) return;
  for (const auto& node : std::vector<std::string>(found->second.replicas)) {
    if (node == self->state.settings.self_id) continue;
    if (self->state.led.count(shard_number) == 0) return;  // stepped down meanwhile
    ship(self, shard_number, node);
  }
}

// Ships shard `shard_number` to `node` as a snapshot, on a thread of its
// own (it reads everything on one RocksDB snapshot), then the log tail.
void send_snapshot(pointer self, uint32_t shard_number, const std::string& node) {
  auto& shard = self->state.led.at(shard_number);
  auto& state = shard.followers[node];
  if (state.snapshotting) return;
  state.snapshotting = true;
  state.known = false;
  const uint64_t epoch = shard.epoch;
  with_peer(self, node, [=](const caf::actor* remote) {
    auto led = self->state.led.find(shard_number);
    if (led == self->state.led.end() || led->second.epoch != epoch) return;
    auto& again = led->second.followers[node];
    if (remote == nullptr) {
      again.snapshotting = false;
      again.retry_at = clock::now() + self->state.settings.tick * 5;
      return;
    }
    observability::log_info("replication: shard {}: sending a snapshot to node {}", shard_number,
                            node);
    snapshot_job job{self->state.store,
                     selector_of(self, shard_number),
                     epoch,
                     *remote,
                     self->state.settings.peer_timeout * 10,
                     self->state.settings.snapshot_chunk_bytes};
    auto sender = self->system().spawn<caf::detached>(snapshot_sender, std::move(job));
    self->request(sender, caf::infinite, snapshot_atom::value)
        .then(
            [=](log_position at) {
              auto still = self->state.led.find(shard_number);
              if (still == self->state.led.end() || still->second.epoch != epoch) return;
              auto& done = still->second.followers[node];
              done.snapshotting = false;
              done.known = true;
              done.match = at.seq;
              self->state.gauges->snapshots_sent++;
              observability::log_info("replication: shard {}: node {} has the snapshot at {}",
                                      shard_number, node, at.seq);
              advance_commit(self, still->second);
              pump(self, shard_number);
            },
            [=](caf::error& error) {
              observability::log_warn("replication: shard {}: snapshot to node {} failed: {}",
                                      shard_number, node, caf::to_string(error));
              auto still = self->state.led.find(shard_number);
              if (still == self->state.led.end() || still->second.epoch != epoch) return;
              auto& failed = still->second.followers[node];
              failed.snapshotting = false;
              failed.retry_at = clock::now() + self->state.settings.tick * 10;
            });
  });
}

void start_leading(pointer self, uint32_t shard_number, const shard_assignment& assignment) {
  auto& st = self->state;
  auto [it, fresh] = st.led.try_emplace(shard_number);
  auto& shard = it->second;
  if (!fresh && shard.epoch == assignment.epoch) {
    shard.replicas = assignment.replicas;  // a rebalance with the same leader
    std::erase_if(shard.followers, [&](const auto& entry) {
      return std::find(shard.replicas.begin(), shard.replicas.end(), entry.first) ==
             shard.replicas.end();
    });
    return;
  }
  if (!fresh) step_down(self, shard_number, "a new epoch");
  auto& mine = st.led[shard_number];
  mine.epoch = assignment.epoch;
  mine.replicas = assignment.replicas;
  st.gauges->shards_recovering++;
  st.promised[shard_number] = std::max(st.promised[shard_number], assignment.epoch);
  recover(self, shard_number);
}

}  // namespace billing::cluster::replication::detail
