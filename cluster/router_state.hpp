// The node router's state and the steps its files share (cluster/node_router.hpp):
// peer_links.cpp connects to peers and tells transport failures from the
// owners' answers, held_writes.cpp keeps and delivers the writes held for an
// unreachable owner (hinted handoff), node_router.cpp routes each request.
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "actors/commit_waiters.hpp"
#include "cluster/fence.hpp"
#include "cluster/node_router.hpp"

namespace billing::cluster::router_internal {

using actors::directory_actor;
using clock = std::chrono::steady_clock;
using local_atom = caf::atom_constant<caf::atom("local")>;
using held_atom = caf::atom_constant<caf::atom("held")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using erased_atom = caf::atom_constant<caf::atom("erased")>;
using members_atom = caf::atom_constant<caf::atom("members")>;

// The directory interface plus the router's own bookkeeping messages.
using router_actor = directory_actor::extend<
    caf::replies_to<local_atom>::with<directory_actor>,
    // The hold with this ticket was committed with this status.
    caf::reacts_to<held_atom, uint64_t, uint8_t, std::string>,
    // Time to retry unreachable peers and deliver held writes.
    caf::reacts_to<tick_atom>,
    // A delivered write's record (node, sequence) is off the disk.
    caf::reacts_to<erased_atom, std::string, uint64_t>,
    // The member set changed (etcd mode); true: this node is leaving.
    caf::reacts_to<members_atom, std::vector<member>, std::vector<shard_assignment>, bool>>;

// One peer node as the router sees it.
struct peer_link {
  member info;
  // False for a node that left the cluster (or is only known from writes
  // held for it): its held writes are re-routed to the customers' new owners.
  bool is_member = true;
  directory_actor remote;  // valid while connected
  bool connecting = false;
  clock::time_point retry_at{};  // while unreachable: not tried before this
  // Requests waiting for the connection: called with the remote directory,
  // or null when the peer is unreachable.
  std::vector<std::function<void(const directory_actor*)>> waiting;
  uint64_t held = 0;  // writes held for it in the handoff family
  bool delivering = false;
  // Delivered, but their records' deletion is not committed yet: a scan
  // must not send (and count) them again.
  std::set<uint64_t> erasing;
};

struct router_state {
  std::optional<membership> members;
  router_settings settings;
  std::shared_ptr<storage::ledger_store> store;
  std::shared_ptr<cluster_gauges> gauges;
  directory_actor local;
  std::map<std::string, peer_link> peers;  // every member but this node
  uint64_t next_sequence = 1;
  actors::commit_waiters holds_in_commit;
  static inline const char* name = "node_router";
};

using router_pointer = router_actor::stateful_pointer<router_state>;

// Errors of the transport (the peer is gone, slow, or never answered) as
// opposed to the owner's own answer (a status it returned on purpose).
bool is_transport_error(const caf::error& error);
// A peer's fence refused the message: our placement is older than its (or
// it no longer leads the shard). Not a fault of the peer's link.
bool is_fence_refusal(const caf::error& error);

// Sends `xs` to `remote` (a peer's published actor): behind the fence of
// `customer_id`'s shard when this node has a placement (etcd mode).
template <class... Ts>
auto request_peer(router_pointer self, const directory_actor& remote, caf::duration timeout,
                  const std::string& customer_id, Ts&&... xs) {
  const auto& members = *self->state.members;
  if (members.shards().empty()) return self->request(remote, timeout, std::forward<Ts>(xs)...);
  return self->request(caf::actor_cast<fenced_directory_actor>(remote), timeout, fenced_atom::value,
                       members.fence_of(customer_id), std::forward<Ts>(xs)...);
}

// Unavailable, naming the unreachable node that owns `customer_id`.
status unreachable(const peer_link& link, std::string_view customer_id);
void mark_unreachable(router_pointer self, peer_link& link, std::string_view why);
// Calls `go` with the peer's directory, connecting first if needed, or with
// null when the peer is unreachable (or was, less than retry_interval ago).
void with_peer(router_pointer self, peer_link& link,
               std::function<void(const directory_actor*)> go);

// held_writes.cpp. Stores `write` in the handoff family for `link`'s node and
// answers `promise` once that is durable: the write is then acknowledged (and
// delivered later).
void hold(router_pointer self, peer_link& link, model::customer_part write,
          caf::typed_response_promise<std::vector<model::item_outcome>> promise);
void hold(router_pointer self, peer_link& link, model::metald_op write,
          caf::typed_response_promise<uint32_t> promise);
// Delivers the writes held for `link`'s node (or re-routes them, for a node
// no longer a member), a batch at a time.
void deliver_held(router_pointer self, peer_link& link);
// Counts the writes held for each node (from an earlier run; a node no
// longer a member gets a link too, to re-route them) and finds the next free
// sequence number.
status load_held(router_state& st);

}  // namespace billing::cluster::router_internal
