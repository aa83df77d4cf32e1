// Shard hand-over after a membership change. A node that starts with a new
// member list may hold ledgers of customers another node now owns. For each
// such customer it copies the ledger to the new owner, then deletes it here:
//   1. every raw window is re-ingested through the router (so the owner's
//      dedup index, rollups and audit trail are built by its normal ingest
//      path, exactly once; an unreachable owner gets them by hinted handoff);
//   2. plans, finalized invoices, metald VM states and gaps are copied
//      verbatim where the owner has no record under the same key;
//   3. only when both are acknowledged, the customer's key ranges here are
//      deleted (its audit entries stay: they are links of this node's chain).
// Until a customer is handed over, queries for it (routed to the new owner)
// may miss usage that has not been copied yet.
#pragma once

#include <caf/fwd.hpp>

#include <chrono>
#include <memory>

#include "actors/messages.hpp"
#include "cluster/membership.hpp"
#include "cluster/node_router.hpp"
#include "storage/ledger_store.hpp"

namespace billing::cluster {

struct handover_settings {
  // Wait before the first pass (peers are usually starting too), and between
  // passes while some customer could not be handed over.
  std::chrono::milliseconds first_delay{1000};
  std::chrono::milliseconds retry_interval{10000};
  // Between passes after one that moved everything: during a rolling
  // membership change, peers still on the old list may send this node
  // customers it does not own; a later pass moves those too.
  std::chrono::milliseconds idle_interval{60000};
  size_t windows_per_part = 1000;
  // Keep passing every idle_interval after a pass that moved everything
  // (etcd mode: members come and go while the node runs). Otherwise the
  // hand-over ends after its first complete pass.
  bool keep_running = false;
  std::chrono::seconds request_timeout{60};
};

// Starts the hand-over on a thread of its own; it runs a pass after
// first_delay, then every retry_interval while a customer could not be moved
// and every idle_interval otherwise, until an exit message.
caf::actor spawn_handover(caf::actor_system& system, membership members,
                          actors::directory_actor router,
                          std::shared_ptr<storage::ledger_store> store,
                          std::shared_ptr<cluster_gauges> gauges, handover_settings settings = {});

// A new member set and placement (etcd mode): a pass follows soon. `leaving`: this node
// owns nothing any more and hands over every customer.
void handover_members(const caf::actor& handover, std::vector<member> members,
                      std::vector<shard_assignment> shards, bool leaving);

// Runs a pass now and waits for it (a leaving node, before it exits); true
// when every customer was moved.
bool drain_now(caf::actor_system& system, const caf::actor& handover,
               std::chrono::milliseconds timeout);

}  // namespace billing::cluster
