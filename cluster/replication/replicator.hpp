// Replicated customer ledgers (issue 16). Each node runs one replicator.
// For the shards this node leads it ships every log entry its store wrote
// (storage/replication_log.hpp) to the shard's followers, in order, and
// completes a write once a majority of the replica set (itself included)
// holds it durably; for the shards it follows it applies the leader's
// entries, durably and in order, and refuses a stale epoch. A node that
// becomes a shard's leader (a new epoch in etcd) first recovers: it asks the
// replicas for their log positions, which also makes them refuse every older
// epoch, takes the entries it lacks from the most advanced of a majority, and
// only then serves the shard (actors/shard_terms.hpp). A replica that is
// empty, too far behind or diverged gets a snapshot of the shard and then the
// log tail. See README "Replicated ledgers".
#pragma once

#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actors/shard_terms.hpp"
#include "cluster/membership.hpp"
#include "cluster/placement.hpp"
#include "storage/ledger_store.hpp"

namespace billing::cluster::replication {

// The member set and placement (from the coordinator).
using placement_atom = caf::atom_constant<caf::atom("rplace")>;

struct replicator_settings {
  std::string self_id;
  // A write not durable on a majority this long after it was durable here
  // answers unavailable (it stays logged and is shipped later).
  std::chrono::milliseconds ack_timeout{5000};
  // A request to a peer's replicator taking longer fails (and is retried).
  std::chrono::milliseconds peer_timeout{3000};
  // How often followers are probed, timeouts checked, recoveries retried.
  std::chrono::milliseconds tick{200};
  // Node-to-node TLS (caf-openssl), as the router's.
  bool tls = false;
  // Entries per append message, at most (and about this many bytes).
  size_t append_entries = 512;
  size_t append_bytes = size_t{4} << 20;
  size_t snapshot_chunk_bytes = size_t{2} << 20;
  // Entries of each led shard kept in memory for followers that lag.
  size_t tail_entries = 4096;
  // The store was created by this start (no ledger in the data dir): the
  // node lost whatever it held, so every shard the placement already lists
  // it in is unsynced here until this node has caught up with a leader.
  bool store_was_empty = false;
};

// For /metrics (billing_replication{kind=...}).
struct replication_gauges {
  std::atomic<int64_t> shards_led{0};          // served here: recovered leader
  std::atomic<int64_t> shards_recovering{0};   // led here, not serving yet
  std::atomic<uint64_t> entries_shipped{0};    // entries followers acknowledged
  std::atomic<uint64_t> entries_applied{0};    // leaders' entries applied here
  std::atomic<uint64_t> majority_timeouts{0};  // writes answered unavailable
  std::atomic<uint64_t> stale_refused{0};      // messages of a stale epoch refused
  std::atomic<uint64_t> snapshots_sent{0};
  std::atomic<uint64_t> snapshots_installed{0};
  std::atomic<uint64_t> recoveries{0};        // leaderships taken over
  std::atomic<int64_t> lagging_followers{0};  // followers behind the leader's log
};

// Spawns the replicator of this node.
caf::actor spawn_replicator(caf::actor_system& system, std::shared_ptr<storage::ledger_store> store,
                            std::shared_ptr<actors::shard_terms> terms,
                            replicator_settings settings,
                            std::shared_ptr<replication_gauges> gauges);

// The store's side: lead commits are checked against `terms` and handed to
// `replicator` once durable here.
std::shared_ptr<storage::replication_sink> make_sink(
    caf::actor replicator, std::shared_ptr<const actors::shard_terms> terms);

}  // namespace billing::cluster::replication
