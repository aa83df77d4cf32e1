// Epoch fencing of cross-node messages (issue 15, etcd mode). A node sends a
// peer a message about a customer only with the fence of the customer's
// shard as it sees it (shard number, epoch). The peer publishes not its
// directory but a fence in front of it, which refuses a message whose epoch
// is older than the peer's own view of the shard, or equal to it while the
// peer does not lead the shard: a node acts as a shard's leader only while
// it holds the current epoch, and a sender with an old placement cannot make
// a former leader write. Refusals are `aborted` errors naming both epochs;
// the router holds a refused write (and re-routes it once its own view is
// current) and answers a refused read `unavailable`.
#pragma once

#include <caf/all.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "cluster/placement.hpp"
#include "model/status.hpp"

namespace billing::cluster {

using fenced_atom = caf::atom_constant<caf::atom("fenced")>;
using shards_atom = caf::atom_constant<caf::atom("shards")>;
// Replicated ledgers: the node's replicator (cluster/replication), set
// once at start and asked for by peers' replicators.
using replicator_atom = caf::atom_constant<caf::atom("replctr")>;

// What a node publishes in etcd mode: the directory interface (calls about
// no shard: locating a VM, calls run on every node) plus each customer call
// behind a fence.
using fenced_directory_actor = actors::directory_actor::extend<
    caf::replies_to<fenced_atom, shard_fence, actors::append_atom,
                    model::customer_part>::with<std::vector<model::item_outcome>>,
    caf::replies_to<fenced_atom, shard_fence, actors::metald_atom,
                    model::metald_op>::with<uint32_t>,
    caf::replies_to<fenced_atom, shard_fence, actors::usage_atom,
                    model::usage_query>::with<model::customer_usage>,
    caf::replies_to<fenced_atom, shard_fence, actors::window_atom,
                    model::window_query>::with<model::billing_window>,
    caf::replies_to<fenced_atom, shard_fence, actors::subscribe_atom, std::string,
                    actors::subscriber_actor>::with<model::usage_update>,
    caf::replies_to<fenced_atom, shard_fence, actors::import_atom,
                    storage::customer_records>::with<uint32_t>,
    caf::replies_to<fenced_atom, shard_fence, actors::call_atom,
                    actors::forwarded_call>::with<std::vector<std::string>>,
    // This node's current placement (from the coordinator).
    caf::reacts_to<shards_atom, std::vector<shard_assignment>>,
    caf::reacts_to<replicator_atom, caf::actor>,
    caf::replies_to<replicator_atom>::with<caf::actor>>;

// ok, or `aborted` when node `self_id`, whose view of the shards is
// `known`, must refuse a message carrying `fence`.
status check_fence(const std::vector<shard_assignment>& known, const std::string& self_id,
                   const shard_fence& fence);

// Spawns the fence in front of `local` (linked to it). `refused` counts the
// messages it refused (for /metrics).
fenced_directory_actor spawn_fence(caf::actor_system& system, actors::directory_actor local,
                                   std::string self_id,
                                   std::shared_ptr<std::atomic<uint64_t>> refused);

}  // namespace billing::cluster
