// The node router: the directory the gateway talks to when billingd runs as
// a cluster. It speaks the directory's interface and sends every request to
// the directory of the node that owns the customer (membership.hpp): the
// local one directly, a peer's through CAF's middleman (remote actors; TLS
// with caf-openssl). Writes for an owner it cannot reach are kept durably in
// the local ledger's handoff family, acknowledged, and delivered when the
// owner is back (hinted handoff); reads for such a customer are unavailable.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include "actors/messages.hpp"
#include "cluster/fence.hpp"
#include "cluster/membership.hpp"
#include "storage/ledger_store.hpp"

namespace billing::cluster {

struct router_settings {
  // How long a request to a peer may take before the peer counts as
  // unreachable (a write is then held; a read is unavailable).
  std::chrono::milliseconds peer_timeout{5000};
  // A peer found unreachable is not tried again for this long (requests for
  // it are held or refused at once), and held writes are retried this often.
  std::chrono::milliseconds retry_interval{1000};
  // How long a forwarded call (invoices, plans) may take on a peer.
  std::chrono::milliseconds call_timeout{60000};
  // Held writes delivered to a returning peer at once.
  size_t delivery_batch = 64;
  // Connect to peers with caf-openssl (the openssl module must be loaded).
  bool tls = false;
  // etcd mode: peers get this node's directory behind an epoch fence
  // (cluster/fence.hpp), which counts what it refuses here.
  bool fenced = false;
  // Replicated ledgers (etcd, R > 1): a write is acknowledged only by a
  // majority of its shard's replicas, so one for an unreachable or refusing
  // leader is answered unavailable rather than held on this node alone.
  bool replicated = false;
  std::shared_ptr<std::atomic<uint64_t>> fence_refused;
};

// For /metrics; updated by the router, read by the scrape.
struct cluster_gauges {
  std::atomic<int64_t> handoff_pending{0};     // held writes not yet delivered
  std::atomic<uint64_t> handoff_held{0};       // writes held since start
  std::atomic<uint64_t> handoff_delivered{0};  // held writes the owner stored since start
  std::atomic<int64_t> peers_connected{0};
  std::atomic<uint64_t> handover_customers{0};  // customers handed over to a new owner
};

// Makes this node's own directory, whose regional ingest actors send each
// customer's part to `router`.
using local_directory_factory =
    std::function<actors::directory_actor(actors::directory_actor router)>;

struct cluster_node {
  actors::directory_actor router;  // for the gateway and the metald instances actor
  actors::directory_actor local;   // this node's own directory
  fenced_directory_actor fence;    // etcd mode: in front of `local`, for the peers
};

// Spawns the router and, through it, the local directory (linked: stopping
// the router stops both). Loads the count of held writes from `store`.
result<cluster_node> spawn_cluster_node(caf::actor_system& system, membership members,
                                        router_settings settings,
                                        const local_directory_factory& make_local,
                                        std::shared_ptr<storage::ledger_store> store,
                                        std::shared_ptr<cluster_gauges> gauges);

// Tells the router (spawn_cluster_node's) the new member set and shard
// placement (etcd mode; no shards: rendezvous over the members):
// customers are routed to their owners in it from then on; writes it holds
// for nodes gone are re-routed. `leaving`: this node is not a member any
// more (it drains before it exits).
void send_members(const actors::directory_actor& router, std::vector<member> members,
                  std::vector<shard_assignment> shards, bool leaving);

// Publishes `local` (etcd mode: the fence) on members.self()'s port, bound to `bind_address`
// ("" binds every interface), with TLS when settings.tls.
result<uint16_t> publish_local_directory(caf::actor_system& system, const cluster_node& node,
                                         const membership& members, const router_settings& settings,
                                         const std::string& bind_address);

}  // namespace billing::cluster
