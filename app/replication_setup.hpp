// Wiring of replicated ledgers (issue 16) into billingd: the table of
// served shards, the replicator and the store's sink, when --etcd-endpoints
// and --replication-factor above 1 ask for them.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/shard_terms.hpp"
#include "app/config.hpp"
#include "cluster/replication/replicator.hpp"
#include "storage/ledger_store.hpp"

namespace billing::app {

struct replication_parts {
  std::shared_ptr<actors::shard_terms> terms;  // null: not replicated
  caf::actor replicator;
  std::shared_ptr<cluster::replication::replication_gauges> gauges =
      std::make_shared<cluster::replication::replication_gauges>();
};

// `store_was_empty`: the ledger was created by this start (a new node, or
// one whose disk was lost).
replication_parts start_replication(caf::actor_system& system, const billingd_config& config,
                                    const std::shared_ptr<storage::ledger_store>& store,
                                    bool store_was_empty);

// The replication gauges as billing_cluster{kind="replication_..."} figures.
void add_replication_figures(const cluster::replication::replication_gauges& gauges,
                             std::vector<std::pair<std::string, int64_t>>& figures);

void add_replication_message_types(caf::actor_system_config& config);

}  // namespace billing::app
