// The registry of a node's actors: one regional ingest actor per region and
// one ledger per customer, spawned on first use, and a pool of query workers;
// all linked to the directory, so that stopping the directory stops them all.
#pragma once

#include <memory>

#include "actors/actor_gauges.hpp"
#include "actors/messages.hpp"
#include "actors/query_worker.hpp"
#include "actors/regional_ingest.hpp"
#include "storage/ledger_store.hpp"

namespace billing::actors {

// `gauges` (may be null) counts the customer ledgers and their queued parts.
// The regional ingest actors send each customer's part to `parts_router`
// (in a cluster, the node router that knows which node owns the customer);
// an invalid handle sends them to this directory's own ledgers. `calls`
// runs forwarded calls (call_atom); without it they are unimplemented.
directory_actor spawn_directory(caf::actor_system& system, ingest_settings settings,
                                query_settings queries,
                                std::shared_ptr<storage::ledger_store> store,
                                std::shared_ptr<actor_gauges> gauges = nullptr,
                                directory_actor parts_router = {}, call_executor calls = {});

}  // namespace billing::actors
