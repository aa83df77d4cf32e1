// A shard's data in the store, as a replica snapshot moves it (issue 16):
// every record of the replicated families whose customer is in the shard,
// read on one RocksDB snapshot together with the shard's log position, and
// the erasure of all of it on a replica that installs a snapshot. Blocking:
// call off the actors' scheduler (the replicator's detached workers).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/status.hpp"
#include "storage/ledger_store.hpp"

namespace billing::cluster::replication {

using shard_function = uint32_t (*)(std::string_view customer_id, uint32_t shard_count);

// The customer a record of `family` belongs to: the first key part, or for
// the vm index (keyed by VM) the customer in its value; nullopt when the
// record names none. The default plan's "" belongs to no shard (every node
// keeps its own).
std::optional<std::string> customer_of(uint32_t family, std::string_view key,
                                       std::string_view value);

struct shard_selector {
  uint32_t shard = 0;
  uint32_t shard_count = 0;
  shard_function shard_of = nullptr;
  bool contains(uint32_t family, std::string_view key, std::string_view value) const;
  // Unavailable while the cluster's shard count is not known (0: a node
  // that has not read the placement yet): every customer would then map to
  // shard 0, and an install would erase nothing of any other shard, or a
  // snapshot export nothing of it. Every function below refuses such a
  // selector before touching the store.
  status usable() const;
};

// Reads the shard's records on one snapshot and hands them to `chunk` about
// `chunk_bytes` at a time (the last call has `last` set, possibly with no
// records); `at` is the shard's log position in that snapshot, given first.
status export_shard(
    const storage::ledger_store& store, const shard_selector& selector, size_t chunk_bytes,
    const std::function<status(const storage::log_position& at)>& begin,
    const std::function<status(std::vector<storage::stored_record>&, bool last)>& chunk);

// Erases every record of the shard and its log, and sets its log position to
// (0, 0), in synced commits of at most `per_commit` keys. Audit entries (links
// of this node's chain) are only marked: finish_install retracts those the
// snapshot did not bring (storage/audit_chain.hpp).
status erase_shard(storage::ledger_store& store, const shard_selector& selector,
                   size_t per_commit = 10'000);

// Stores snapshot records (one synced commit).
status put_records(storage::ledger_store& store,
                   const std::vector<storage::stored_record>& records);

// After the snapshot's records: retracts the marked audit entries it did not
// hold, and the shard's log ends at `at`.
status finish_install(storage::ledger_store& store, const shard_selector& selector,
                      const storage::log_position& at);

}  // namespace billing::cluster::replication
