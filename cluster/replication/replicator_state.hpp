// The replicator's state and the steps its files share
// (cluster/replication/replicator.hpp): peers.cpp reaches other nodes'
// replicators, leader.cpp ships a led shard's log and counts its majority,
// recovery.cpp makes a new leader catch up before it serves, replicator.cpp
// holds the behavior (placement, commits, ticks, the follower's side).
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/replication/peer_protocol.hpp"
#include "cluster/replication/replicator.hpp"

namespace billing::cluster::replication::detail {

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
  // What recovery found: a follower that reaches max(this, committed) holds
  // everything acknowledged, and is synced from then on.
  uint64_t recovered_seq = 0;
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
  // Shards this replica lost (an empty disk, an erase for a snapshot) and has
  // not caught up since: its position does not count toward a new leader's
  // majority (storage/replication_log.hpp, "unsynced/").
  std::set<uint32_t> unsynced;
  // Shards a snapshot install began erasing here and has not finished
  // ("installing/"): they take a whole snapshot, never the log, and give none.
  std::set<uint32_t> installing;
  bool placement_seen = false;
  static inline const char* name = "replicator";
};

using pointer = caf::stateful_actor<replicator_state>*;

size_t majority(size_t replicas);
caf::error refusal(uint32_t shard, uint64_t epoch, uint64_t promised);
// The records of `shard` in this node's store, by the cluster's shard count
// as this node knows it (check usable(): 0 before the placement is read).
shard_selector selector_of(pointer self, uint32_t shard);
// This node's durable position of a followed shard (cached).
log_position local_position(pointer self, uint32_t shard);
// This replica holds shard `shard` as a leader does (it recovered it):
// synced at once in memory, and its marker cleared on disk.
void mark_synced(pointer self, uint32_t shard);

// peers.cpp: calls `go` with the peer's replicator, connecting first, or
// with null when it is unreachable (or was, a moment ago).
void with_peer(pointer self, const std::string& node, std::function<void(const caf::actor*)> go);
void forget_peer(pointer self, const std::string& node);

// leader.cpp
// Whether a message of `epoch` about `shard` may be acted on; raises the
// shard's promised epoch to it. A node that led the shard at an older
// epoch steps down first.
bool admit_epoch(pointer self, uint32_t shard, uint64_t epoch);
void start_leading(pointer self, uint32_t shard_number, const shard_assignment& assignment);
void step_down(pointer self, uint32_t shard_number, const std::string& why);
// Ships what each follower lacks (one append in flight per follower).
void pump(pointer self, uint32_t shard);
// Moves the majority position and completes the writes it covers.
void advance_commit(pointer self, led_shard& shard);

// recovery.cpp: catches a new leader up from a majority, then serves.
void recover(pointer self, uint32_t shard);

}  // namespace billing::cluster::replication::detail
