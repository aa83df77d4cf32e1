// The ingest actor of one region: validates a batch item by item, splits the
// valid windows by customer, and has each part stored by its customer's
// ledger. It answers once every part is durable (or with the first error).
#pragma once

#include <chrono>
#include <set>
#include <string>

#include "actors/messages.hpp"
#include "actors/shard_terms.hpp"
#include "model/validation.hpp"

namespace billing::actors {

struct ingest_settings {
  model::validation_limits limits;
  // Regions accepted; empty means any.
  std::set<std::string> allowed_regions;
  // A customer ledger with nothing to do for this long stops (its state is
  // all in RocksDB; the next message respawns it). 0: never.
  std::chrono::seconds customer_idle{600};
  // Replicated ledgers (issue 16): the shards this node serves as leader;
  // null when not replicated (every customer here is served here).
  std::shared_ptr<const shard_terms> terms;
};

// The pure part of an ingest: resolves each window's region against the
// batch's, validates it, and groups the valid ones by customer. Rejections
// are written into `report` (which must hold one slot per window).
std::vector<model::customer_part> split_by_customer(model::ingest_batch& batch,
                                                    const ingest_settings& settings, int64_t now_ns,
                                                    model::ingest_report& report);

ingest_actor spawn_regional_ingest(caf::actor_system& system, std::string region,
                                   ingest_settings settings, directory_actor directory);

}  // namespace billing::actors
