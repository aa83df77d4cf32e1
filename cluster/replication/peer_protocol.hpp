// The messages between replicators (cluster/replication/replicator.hpp) and
// the snapshot worker. Remote messages carry the shard and the sender's
// epoch; a replica refuses an epoch older than the newest it has seen.
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "actors/messages.hpp"
#include "cluster/placement.hpp"
#include "cluster/replication/shard_data.hpp"
#include "storage/ledger_store.hpp"

namespace billing::cluster::replication {

// leader -> follower: (shard, epoch, prev position, entries following it,
//   sync floor: a replica whose log reaches it is synced)
//   -> (verdict, the follower's position)
using append_atom = caf::atom_constant<caf::atom("rappend")>;
inline constexpr uint8_t append_applied = 0;
inline constexpr uint8_t append_stale = 1;     // the follower knows a newer epoch
inline constexpr uint8_t append_mismatch = 2;  // prev is not where the follower's log ends
// The follower's shard is partly erased by a snapshot install that did not
// finish: only a snapshot refills it, never the log from its start.
inline constexpr uint8_t append_needs_snapshot = 3;
// new leader -> replicas: (shard, epoch) -> their position and whether it is
// synced (holds what it acknowledged); from then on they refuse every older
// epoch.
using position_atom = caf::atom_constant<caf::atom("rpos")>;
// new leader -> most advanced replica: (shard, epoch, from seq) -> entries
using fetch_atom = caf::atom_constant<caf::atom("rfetch")>;
// snapshot install: (shard, epoch, phase, records, position) -> position
using install_atom = caf::atom_constant<caf::atom("rinstall")>;
inline constexpr uint8_t install_begin = 0;
inline constexpr uint8_t install_records = 1;
inline constexpr uint8_t install_end = 2;
// new leader -> a replica: send me a snapshot of (shard) as of epoch:
// (shard, epoch, requester) -> position installed
using pull_atom = caf::atom_constant<caf::atom("rpull")>;
// local: run a snapshot job; committed entries from the sink; the tick.
using snapshot_atom = caf::atom_constant<caf::atom("rsnapshot")>;
using logged_atom = caf::atom_constant<caf::atom("rlogged")>;
using tick_atom = caf::atom_constant<caf::atom("rtick")>;

// What the store's sink hands over after a durable write.
struct logged_batch {
  std::vector<storage::logged_entry> entries;
  std::vector<storage::majority_wait> waits;
};

// A snapshot of one shard for one replica.
struct snapshot_job {
  std::shared_ptr<storage::ledger_store> store;
  shard_selector selector;
  uint64_t epoch = 0;
  caf::actor target;  // the replica's replicator
  std::chrono::milliseconds step_timeout{30000};
  size_t chunk_bytes = size_t{2} << 20;
};

// A detached worker: answers snapshot_atom with the position the replica
// installed, or an error.
caf::behavior snapshot_sender(caf::event_based_actor* self, snapshot_job job);

}  // namespace billing::cluster::replication
