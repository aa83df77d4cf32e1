#include "cluster/replication/replicator.hpp"

#include <fmt/format.h>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>

#include "actors/errors.hpp"
#include "cluster/fence.hpp"
#include "cluster/replication/peer_protocol.hpp"
#include "cluster/replication/shard_data.hpp"
#include "observability/log.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<billing::cluster::replication::logged_batch>)

namespace billing::cluster::replication {
namespace {

using clock = std::chrono::steady_clock;
using storage::log_entry;
using storage::log_position;

struct peer {
  member info;
  caf::actor replicator;  // valid while connected
  bool connecting = false;
  clock::time_point retry_at{};
  std::vector<std::function<void(const caf::actor*)>> waiting;
};

struct follower {
  bool known = false;  // match is what the follower reported
  uint64_t match = 0;  // its log holds ours up to here, durably
  bool in_flight = false;
  bool snapshotting = false;
  clock::time_point retry_at{};
};

struct timed_wait {
  storage::majority_wait wait;
  clock::time_point deadline;
};

struct led_shard {
  uint64_t epoch = 0;
  std::vector<std::string> replicas;
  bool recovered = false;
  bool recovering = false;  // an attempt is under way
  uint64_t attempt = 0;
  clock::time_point retry_at{};
  log_position last;       // durable here
  uint64_t committed = 0;  // durable on a majority
  std::map<std::string, follower> followers;
  std::deque<log_entry> tail;  // the newest entries, for followers that lag
  std::deque<timed_wait> waits;
};

struct replicator_state {
  std::shared_ptr<storage::ledger_store> store;
  std::shared_ptr<actors::shard_terms> terms;
  replicator_settings settings;
  std::shared_ptr<replication_gauges> gauges;
  std::map<std::string, peer> peers;
  std::unordered_map<uint32_t, led_shard> led;
  // Per shard, the newest epoch seen: older ones are refused.
  std::unordered_map<uint32_t, uint64_t> promised;
  // Followed shards' durable log positions, once read; and those with an
  // apply or a snapshot install under way.
  std::unordered_map<uint32_t, log_position> positions;
  std::set<uint32_t> busy;
  static inline const char* name = "replicator";
};

using pointer = caf::stateful_actor<replicator_state>*;

size_t majority(size_t replicas) {
  return replicas / 2 + 1;
}

caf::error refusal(uint32_t shard, uint64_t epoch, uint64_t promised) {
  return actors::to_error(
      status{status_code::aborted, fmt::format("shard {}: epoch {} is stale (this replica knows "
                                               "epoch {})",
                                               shard, epoch, promised)});
}

// Whether a message of `epoch` about `shard` may be acted on; raises the
// shard's promised epoch to it. A node that led the shard at an older
// epoch steps down first.
bool admit_epoch(pointer self, uint32_t shard, uint64_t epoch);

log_position local_position(pointer self, uint32_t shard) {
  auto& st = self->state;
  if (auto found = st.positions.find(shard); found != st.positions.end()) return found->second;
  auto read = st.store->shard_position(shard);
  if (!read.ok()) {
    observability::log_warn("replication: shard {}: {}", shard, read.error().message());
    return {};
  }
  st.positions[shard] = read.value();
  return read.value();
}

// ---- peers ----

void with_peer(pointer self, const std::string& node, std::function<void(const caf::actor*)> go) {
  auto& st = self->state;
  auto found = st.peers.find(node);
  if (found == st.peers.end()) {
    go(nullptr);
    return;
  }
  auto& link = found->second;
  if (link.replicator) {
    go(&link.replicator);
    return;
  }
  if (clock::now() < link.retry_at) {
    go(nullptr);
    return;
  }
  link.waiting.push_back(std::move(go));
  if (link.connecting) return;
  link.connecting = true;
  auto finish = [self, node](bool connected) {
    auto& peer_link = self->state.peers.at(node);
    peer_link.connecting = false;
    if (!connected) peer_link.retry_at = clock::now() + self->state.settings.tick * 5;
    auto waiting = std::move(peer_link.waiting);
    for (auto& next : waiting) next(connected ? &peer_link.replicator : nullptr);
  };
  const auto middleman = st.settings.tls ? self->system().openssl_manager().actor_handle()
                                         : self->system().middleman().actor_handle();
  self->request(middleman, st.settings.peer_timeout, caf::connect_atom::value, link.info.host,
                link.info.port)
      .then(
          [self, node, finish](const caf::node_id&, caf::strong_actor_ptr& ptr,
                               const std::set<std::string>&) {
            if (!ptr) {
              finish(false);
              return;
            }
            auto fence = caf::actor_cast<caf::actor>(std::move(ptr));
            self->request(fence, self->state.settings.peer_timeout, replicator_atom::value)
                .then(
                    [self, node, finish](caf::actor& remote) {
                      auto& peer_link = self->state.peers.at(node);
                      peer_link.replicator = std::move(remote);
                      self->monitor(peer_link.replicator);
                      finish(static_cast<bool>(peer_link.replicator));
                    },
                    [finish](caf::error&) { finish(false); });
          },
          [finish](caf::error&) { finish(false); });
}

void forget_peer(pointer self, const std::string& node) {
  auto found = self->state.peers.find(node);
  if (found == self->state.peers.end()) return;
  found->second.replicator = nullptr;
  found->second.retry_at = clock::now() + self->state.settings.tick * 5;
}

// ---- leader ----

void pump(pointer self, uint32_t shard);
void recover(pointer self, uint32_t shard);

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

void advance_commit(pointer self, uint32_t shard_number, led_shard& shard) {
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
  int64_t lagging = 0;
  for (const auto& [node, state] : shard.followers) {
    lowest = std::min(lowest, state.known ? state.match : 0);
    lagging += (!state.known || state.match < shard.last.seq) ? 1 : 0;
  }
  while (!shard.tail.empty() && (shard.tail.front().seq <= lowest ||
                                 shard.tail.size() > self->state.settings.tail_entries)) {
    shard.tail.pop_front();
  }
  (void)shard_number;
  (void)lagging;
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
                  epoch, prev, std::move(entries))
        .then(
            [=](uint8_t verdict, log_position theirs) {
              follower* again = settle();
              if (again == nullptr) return;
              auto& led = self->state.led.at(shard_number);
              if (verdict == append_applied) {
                self->state.gauges->entries_shipped += sent_up_to - prev.seq;
                again->known = true;
                again->match = sent_up_to;
                advance_commit(self, shard_number, led);
              } else if (verdict == append_stale) {
                step_down(self, shard_number, fmt::format("node {} knows a newer epoch", node));
                return;
              } else {
                resync(self, shard_number, node, theirs);
              }
              pump(self, shard_number);
            },
            [=](caf::error& error) {
              if (follower* again = settle()) {
                again->retry_at = clock::now() + self->state.settings.tick;
                if (error.category() != caf::atom("system") || true) forget_peer(self, node);
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
                     {shard_number, self->state.terms->shard_count(), &cluster::shard_of},
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
              advance_commit(self, shard_number, still->second);
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

// ---- recovery (a new leader) ----

struct gathering {
  std::map<std::string, log_position> positions;
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
  shard.recovered = true;
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
  const size_t needed = majority(shard.replicas.size());
  auto check = [self, shard_number, epoch, attempt, gathered, needed] {
    if (gathered->concluded) return;
    if (gathered->positions.size() >= needed) {
      gathered->concluded = true;
      conclude(self, shard_number, epoch, attempt, gathered->positions);
    } else if (gathered->pending == 0) {
      gathered->concluded = true;
      if (led_shard* again = attempt_of(self, shard_number, epoch, attempt)) {
        attempt_failed(self, *again, shard_number,
                       fmt::format("{} of {} replicas answered, {} needed",
                                   gathered->positions.size(), again->replicas.size(), needed));
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
              [=](log_position theirs) {
                gathered->pending--;
                gathered->positions[node] = theirs;
                check();
              },
              [=](caf::error&) {
                gathered->pending--;
                check();
              });
    });
  }
}

// ---- placement, commits, ticks ----

void on_placement(pointer self, const std::vector<member>& members,
                  const std::vector<shard_assignment>& shards) {
  auto& st = self->state;
  for (const auto& m : members) {
    if (m.node_id == st.settings.self_id) continue;
    auto& link = st.peers[m.node_id];
    if (!(link.info == m)) {
      link.info = m;
      link.replicator = nullptr;
      link.retry_at = {};
    }
  }
  for (uint32_t shard_number = 0; shard_number < shards.size(); ++shard_number) {
    const auto& assignment = shards[shard_number];
    if (assignment.epoch == 0 || assignment.replicas.empty()) continue;
    if (!admit_epoch(self, shard_number, assignment.epoch)) continue;
    if (assignment.leader() == st.settings.self_id) {
      start_leading(self, shard_number, assignment);
    } else if (st.led.count(shard_number) != 0) {
      step_down(self, shard_number, fmt::format("node {} leads it now", assignment.leader()));
    }
  }
}

void on_logged(pointer self, logged_batch& batch) {
  auto& st = self->state;
  std::set<uint32_t> touched;
  for (auto& logged : batch.entries) {
    auto found = st.led.find(logged.shard);
    if (found == st.led.end() || found->second.epoch != logged.entry.epoch) continue;
    found->second.last = {logged.entry.epoch, logged.entry.seq};
    found->second.tail.push_back(std::move(logged.entry));
    touched.insert(logged.shard);
  }
  for (auto& wait : batch.waits) {
    auto found = st.led.find(wait.shard);
    if (found == st.led.end() || found->second.epoch != wait.epoch) {
      st.gauges->majority_timeouts++;
      if (wait.on_done) {
        wait.on_done(status{status_code::deadline_exceeded,
                            fmt::format("stored on this node, which no longer leads shard {}; "
                                        "retry",
                                        wait.shard)});
      }
      continue;
    }
    found->second.waits.push_back({std::move(wait), clock::now() + st.settings.ack_timeout});
    touched.insert(found->first);
  }
  for (const uint32_t shard_number : touched) {
    advance_commit(self, shard_number, st.led.at(shard_number));
    pump(self, shard_number);
  }
}

void on_tick(pointer self) {
  auto& st = self->state;
  const auto now = clock::now();
  int64_t lagging = 0;
  for (auto& [shard_number, shard] : st.led) {
    if (!shard.recovered) continue;
    while (!shard.waits.empty() && shard.waits.front().deadline <= now) {
      auto done = std::move(shard.waits.front().wait.on_done);
      shard.waits.pop_front();
      st.gauges->majority_timeouts++;
      if (done) {
        done(status{status_code::deadline_exceeded,
                    fmt::format("stored on this node but not on a majority of shard {}'s "
                                "replicas within {} ms; retry",
                                shard_number, st.settings.ack_timeout.count())});
      }
    }
    for (const auto& [node, state] : shard.followers) {
      lagging += (!state.known || state.match < shard.last.seq) ? 1 : 0;
    }
  }
  st.gauges->lagging_followers = lagging;
  std::vector<uint32_t> shards;
  for (const auto& [shard_number, shard] : st.led) shards.push_back(shard_number);
  for (const uint32_t shard_number : shards) {
    auto found = st.led.find(shard_number);
    if (found == st.led.end()) continue;
    if (found->second.recovered) {
      pump(self, shard_number);
    } else {
      recover(self, shard_number);
    }
  }
}

// ---- follower ----

// Runs one install step on a thread of its own (they block on the disk).
caf::behavior install_worker(caf::event_based_actor* self,
                             std::shared_ptr<storage::ledger_store> store,
                             shard_selector selector) {
  return {
      [self, store, selector](install_atom, uint8_t phase,
                              std::vector<storage::stored_record>& records,
                              log_position at) -> caf::result<log_position> {
        status done;
        if (phase == install_begin) done = erase_shard(*store, selector);
        if (phase == install_records) done = put_records(*store, records);
        if (phase == install_end) done = finish_install(*store, selector.shard, at);
        self->quit();
        if (!done.ok()) return actors::to_error(done);
        return at;
      },
  };
}

struct pending_apply {
  caf::response_promise promise;
  uint32_t shard = 0;
  log_position reached;
};

}  // namespace

caf::actor spawn_replicator(caf::actor_system& system, std::shared_ptr<storage::ledger_store> store,
                            std::shared_ptr<actors::shard_terms> terms,
                            replicator_settings settings,
                            std::shared_ptr<replication_gauges> gauges) {
  auto behavior = [](pointer self, std::shared_ptr<storage::ledger_store> store,
                     std::shared_ptr<actors::shard_terms> terms, replicator_settings settings,
                     std::shared_ptr<replication_gauges> gauges) -> caf::behavior {
    auto& st = self->state;
    st.store = std::move(store);
    st.terms = std::move(terms);
    st.settings = std::move(settings);
    st.gauges = std::move(gauges);
    auto applies = std::make_shared<std::map<uint64_t, pending_apply>>();
    auto next_apply = std::make_shared<uint64_t>(0);
    self->set_down_handler([self](caf::down_msg& down) {
      for (auto& [node, link] : self->state.peers) {
        if (link.replicator && link.replicator.address() == down.source) forget_peer(self, node);
      }
    });
    self->send(self, tick_atom::value);
    return {
        [self](placement_atom, const std::vector<member>& members,
               const std::vector<shard_assignment>& shards) {
          on_placement(self, members, shards);
        },
        [self](logged_atom, std::shared_ptr<logged_batch>& batch) { on_logged(self, *batch); },
        [self](tick_atom) {
          on_tick(self);
          self->delayed_send(self, self->state.settings.tick, tick_atom::value);
        },
        [self, applies, next_apply](
            append_atom, uint32_t shard, uint64_t epoch, log_position prev,
            std::vector<log_entry>& entries) -> caf::result<uint8_t, log_position> {
          auto& st = self->state;
          if (!admit_epoch(self, shard, epoch)) {
            return {append_stale, local_position(self, shard)};
          }
          if (st.led.count(shard) != 0 || st.busy.count(shard) != 0) {
            return {append_mismatch,
                    st.led.count(shard) != 0 ? st.led.at(shard).last : local_position(self, shard)};
          }
          const log_position mine = local_position(self, shard);
          if (prev != mine) return {append_mismatch, mine};
          if (entries.empty()) return {append_applied, mine};
          const uint64_t id = ++*next_apply;
          const log_position reached{entries.back().epoch, entries.back().seq};
          const uint64_t count = entries.size();
          auto promise = self->make_response_promise();
          (*applies)[id] = {promise, shard, reached};
          st.busy.insert(shard);
          storage::write_set writes;
          writes.apply_as_follower(shard, std::move(entries));
          auto me = caf::actor_cast<caf::actor>(self);
          st.store->commit(std::move(writes), [me, id, count](status done) {
            caf::anon_send(me, logged_atom::value, id, count, static_cast<uint8_t>(done.code()),
                           done.message());
          });
          return promise;
        },
        [self, applies](logged_atom, uint64_t id, uint64_t count, uint8_t code,
                        const std::string& message) {
          auto& st = self->state;
          auto found = applies->find(id);
          if (found == applies->end()) return;
          auto pending = std::move(found->second);
          applies->erase(found);
          st.busy.erase(pending.shard);
          if (code == 0) {
            st.positions[pending.shard] = pending.reached;
            st.gauges->entries_applied += count;
            pending.promise.deliver(append_applied, pending.reached);
          } else {
            st.positions.erase(pending.shard);
            observability::log_warn("replication: shard {}: applying entries failed: {}",
                                    pending.shard, message);
            pending.promise.deliver(append_mismatch, local_position(self, pending.shard));
          }
        },
        [self](position_atom, uint32_t shard, uint64_t epoch) -> caf::result<log_position> {
          if (!admit_epoch(self, shard, epoch)) {
            return refusal(shard, epoch, self->state.promised[shard]);
          }
          self->state.positions.erase(shard);
          return local_position(self, shard);
        },
        [self](fetch_atom, uint32_t shard, uint64_t epoch,
               uint64_t from) -> caf::result<std::vector<log_entry>> {
          if (!admit_epoch(self, shard, epoch)) {
            return refusal(shard, epoch, self->state.promised[shard]);
          }
          auto read = self->state.store->read_log(shard, from, self->state.settings.append_entries,
                                                  self->state.settings.append_bytes);
          if (!read.ok()) return actors::to_error(read.error());
          return std::move(read).value();
        },
        [self](install_atom atom, uint32_t shard, uint64_t epoch, uint8_t phase,
               std::vector<storage::stored_record>& records,
               log_position at) -> caf::result<log_position> {
          auto& st = self->state;
          if (!admit_epoch(self, shard, epoch)) return refusal(shard, epoch, st.promised[shard]);
          if (phase == install_begin) {
            st.busy.insert(shard);
            st.positions.erase(shard);
          }
          auto promise = self->make_response_promise<log_position>();
          auto worker = self->system().spawn<caf::detached>(
              install_worker, st.store,
              shard_selector{shard, st.terms->shard_count(), &cluster::shard_of});
          self->request(worker, caf::infinite, atom, phase, std::move(records), at)
              .then(
                  [self, promise, shard, phase](log_position installed) mutable {
                    if (phase == install_end) {
                      self->state.busy.erase(shard);
                      self->state.positions[shard] = installed;
                      self->state.gauges->snapshots_installed++;
                      observability::log_info(
                          "replication: shard {}: snapshot installed (log at {}.{})", shard,
                          installed.epoch, installed.seq);
                    }
                    promise.deliver(installed);
                  },
                  [self, promise, shard](caf::error& error) mutable {
                    self->state.busy.erase(shard);
                    self->state.positions.erase(shard);
                    promise.deliver(std::move(error));
                  });
          return promise;
        },
        [self](pull_atom, uint32_t shard, uint64_t epoch,
               caf::actor& requester) -> caf::result<log_position> {
          auto& st = self->state;
          if (!admit_epoch(self, shard, epoch)) return refusal(shard, epoch, st.promised[shard]);
          snapshot_job job{st.store,
                           {shard, st.terms->shard_count(), &cluster::shard_of},
                           epoch,
                           std::move(requester),
                           st.settings.peer_timeout * 10,
                           st.settings.snapshot_chunk_bytes};
          auto sender = self->system().spawn<caf::detached>(snapshot_sender, std::move(job));
          st.gauges->snapshots_sent++;
          auto promise = self->make_response_promise<log_position>();
          self->request(sender, caf::infinite, snapshot_atom::value)
              .then([promise](log_position at) mutable { promise.deliver(at); },
                    [promise](caf::error& error) mutable { promise.deliver(std::move(error)); });
          return promise;
        },
    };
  };
  return system.spawn(behavior, std::move(store), std::move(terms), std::move(settings),
                      std::move(gauges));
}

namespace {

class actor_sink final : public storage::replication_sink {
 public:
  actor_sink(caf::actor replicator, std::shared_ptr<const actors::shard_terms> terms)
      : replicator_(std::move(replicator)), terms_(std::move(terms)) {}

  bool leads(uint32_t shard, uint64_t epoch) const override {
    return epoch != 0 && terms_->served_epoch(shard) == epoch;
  }

  void committed(std::vector<storage::logged_entry> entries,
                 std::vector<storage::majority_wait> waits) override {
    auto batch = std::make_shared<logged_batch>(logged_batch{std::move(entries), std::move(waits)});
    caf::anon_send(replicator_, logged_atom::value, std::move(batch));
  }

 private:
  caf::actor replicator_;
  std::shared_ptr<const actors::shard_terms> terms_;
};

}  // namespace

std::shared_ptr<storage::replication_sink> make_sink(
    caf::actor replicator, std::shared_ptr<const actors::shard_terms> terms) {
  return std::make_shared<actor_sink>(std::move(replicator), std::move(terms));
}

}  // namespace billing::cluster::replication
