#include "cluster/node_router.hpp"

#include <fmt/format.h>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <map>
#include <set>

#include "actors/commit_waiters.hpp"
#include "actors/errors.hpp"
#include "cluster/fence.hpp"
#include "cluster/handoff.hpp"
#include "observability/log.hpp"
#include "storage/keys.hpp"

namespace billing::cluster {
namespace {

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
bool is_transport_error(const caf::error& error) {
  return error.category() != caf::atom("connect");
}

// A peer's fence refused the message: our placement is older than its (or
// it no longer leads the shard). Not a fault of the peer's link.
bool is_fence_refusal(const caf::error& error) {
  return !is_transport_error(error) && actors::to_status(error).code() == status_code::aborted;
}

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

status unreachable(const peer_link& link, std::string_view customer_id) {
  return {status_code::unavailable,
          fmt::format("customer '{}' is owned by node '{}' ({}:{}), which is unreachable; retry "
                      "later",
                      customer_id, link.info.node_id, link.info.host, link.info.port)};
}

void mark_unreachable(router_pointer self, peer_link& link, std::string_view why) {
  auto& st = self->state;
  if (link.remote) {
    observability::log_warn("cluster: peer {} ({}:{}) is unreachable: {}", link.info.node_id,
                            link.info.host, link.info.port, why);
    self->demonitor(link.remote.address());
    link.remote = directory_actor{};
    st.gauges->peers_connected--;
  }
  link.retry_at = clock::now() + st.settings.retry_interval;
}

// Calls `go` with the peer's directory, connecting first if needed, or with
// null when the peer is unreachable (or was, less than retry_interval ago).
void with_peer(router_pointer self, peer_link& link,
               std::function<void(const directory_actor*)> go) {
  if (link.remote) {
    go(&link.remote);
    return;
  }
  if (clock::now() < link.retry_at) {
    go(nullptr);
    return;
  }
  link.waiting.push_back(std::move(go));
  if (link.connecting) return;
  link.connecting = true;
  auto& st = self->state;
  const auto& middleman = st.settings.tls ? self->system().openssl_manager().actor_handle()
                                          : self->system().middleman().actor_handle();
  auto finish = [self, node = link.info.node_id](const directory_actor* remote) {
    auto& peer = self->state.peers.at(node);
    peer.connecting = false;
    auto waiting = std::move(peer.waiting);
    for (auto& go : waiting) go(remote ? &peer.remote : nullptr);
  };
  self->request(middleman, caf::duration{st.settings.peer_timeout}, caf::connect_atom::value,
                link.info.host, link.info.port)
      .then(
          [self, finish, node = link.info.node_id](const caf::node_id&, caf::strong_actor_ptr& ptr,
                                                   const std::set<std::string>&) {
            auto& peer = self->state.peers.at(node);
            if (!ptr) {
              mark_unreachable(self, peer, "no actor published on its cluster port");
              finish(nullptr);
              return;
            }
            peer.remote = caf::actor_cast<directory_actor>(std::move(ptr));
            self->monitor(peer.remote);
            self->state.gauges->peers_connected++;
            observability::log_info("cluster: connected to peer {} ({}:{})", node, peer.info.host,
                                    peer.info.port);
            finish(&peer.remote);
          },
          [self, finish, node = link.info.node_id](caf::error& error) {
            mark_unreachable(self, self->state.peers.at(node), caf::to_string(error));
            finish(nullptr);
          });
}

// What a write's sender is told when the write is held for its owner.
std::vector<model::item_outcome> held_answer(const model::customer_part& part) {
  std::vector<model::item_outcome> outcomes;
  outcomes.reserve(part.indices.size());
  for (auto index : part.indices) outcomes.push_back(model::item_outcome::accepted(index));
  return outcomes;
}
uint32_t held_answer(const model::metald_op& op) {
  return static_cast<uint32_t>(op.samples.size());
}

// Stores `write` in the handoff family for `link`'s node and answers `promise`
// once that is durable: the write is then acknowledged (and delivered later).
template <class Answer, class Write>
void hold(router_pointer self, peer_link& link, Write write,
          caf::typed_response_promise<Answer> promise) {
  auto& st = self->state;
  Answer answer = held_answer(write);
  handoff_message message{std::move(write)};
  auto value = encode_handoff(self->system(), message);
  if (!value.ok()) {
    promise.deliver(actors::to_error(value.error()));
    return;
  }
  storage::write_set writes;
  writes.put_handoff(link.info.node_id, st.next_sequence++, std::move(value).value());
  link.held++;
  st.gauges->handoff_pending++;
  const uint64_t ticket = st.holds_in_commit.add(
      [self, node = link.info.node_id, promise, answer = std::move(answer)](status stored) mutable {
        if (stored.ok()) {
          self->state.gauges->handoff_held++;
          promise.deliver(std::move(answer));
          return;
        }
        self->state.peers.at(node).held--;
        self->state.gauges->handoff_pending--;
        promise.deliver(actors::to_error(stored));
      });
  st.store->commit(std::move(writes),
                   [router = caf::actor_cast<router_actor>(self), ticket](status stored) {
                     caf::anon_send(router, held_atom::value, ticket,
                                    static_cast<uint8_t>(stored.code()), stored.message());
                   });
}

// Sends `message` to its customer's owner: this node's directory, or the
// owner's through the middleman. When the owner cannot be reached (now, or
// by a transport error of this request), `unreachable_owner(peer, message,
// promise)` answers; the owner's own errors are passed on.
template <class Answer, class Atom, class Message, class Unreachable>
caf::result<Answer> route_to_owner(router_pointer self, Atom atom, Message& message,
                                   Unreachable unreachable_owner) {
  auto& st = self->state;
  const auto& owner = st.members->owner_of(message.customer_id);
  if (owner.node_id == st.members->self().node_id) {
    return self->delegate(st.local, atom, std::move(message));
  }
  auto promise = self->make_response_promise<Answer>();
  with_peer(self, st.peers.at(owner.node_id),
            [self, atom, promise, unreachable_owner, node = owner.node_id,
             message = std::move(message)](const directory_actor* remote) mutable {
              if (remote == nullptr) {
                unreachable_owner(self->state.peers.at(node), std::move(message), promise);
                return;
              }
              request_peer(self, *remote, caf::duration{self->state.settings.peer_timeout},
                           message.customer_id, atom, message)
                  .then(
                      [promise](Answer& answer) mutable { promise.deliver(std::move(answer)); },
                      [self, promise, unreachable_owner, node, message](caf::error& error) mutable {
                        auto& peer = self->state.peers.at(node);
                        if (is_fence_refusal(error)) {
                          // Held (a write) until our placement is current, then
                          // re-routed; refused (a read) for now.
                          observability::log_info("cluster: {}", caf::to_string(error));
                          unreachable_owner(peer, std::move(message), promise);
                          return;
                        }
                        if (!is_transport_error(error)) {
                          promise.deliver(std::move(error));
                          return;
                        }
                        mark_unreachable(self, peer, caf::to_string(error));
                        unreachable_owner(peer, std::move(message), promise);
                      });
            });
  return promise;
}

// A write for an unreachable owner is held (and acknowledged once durable).
template <class Answer, class Atom, class Write>
caf::result<Answer> route_write(router_pointer self, Atom atom, Write& write) {
  return route_to_owner<Answer>(
      self, atom, write,
      [self](peer_link& peer, Write held, caf::typed_response_promise<Answer> promise) {
        if (self->state.settings.replicated) {
          promise.deliver(actors::to_error(unreachable(peer, held.customer_id)));
          return;
        }
        hold(self, peer, std::move(held), promise);
      });
}

// A read for an unreachable owner is unavailable.
template <class Answer, class Atom, class Query>
caf::result<Answer> route_read(router_pointer self, Atom atom, Query& query) {
  return route_to_owner<Answer>(
      self, atom, query,
      [](peer_link& peer, Query unanswered, caf::typed_response_promise<Answer> promise) {
        promise.deliver(actors::to_error(unreachable(peer, unanswered.customer_id)));
      });
}

// Runs a forwarded call with no customer on every node (e.g. the default
// plan, finalizing every customer of a period); fails if any node fails or
// cannot be reached, naming it.
caf::result<std::vector<std::string>> broadcast_call(router_pointer self, actors::call_atom atom,
                                                     actors::forwarded_call& call) {
  struct gathered {
    std::vector<std::string> answers;
    size_t remaining = 0;
    bool failed = false;
  };
  auto promise = self->make_response_promise<std::vector<std::string>>();
  auto state = std::make_shared<gathered>();
  state->remaining = 1;
  for (const auto& [node, link] : self->state.peers) state->remaining += link.is_member ? 1 : 0;
  auto answer = [state, promise](std::vector<std::string>& answers) mutable {
    if (state->failed) return;
    for (auto& one : answers) state->answers.push_back(std::move(one));
    if (--state->remaining == 0) promise.deliver(std::move(state->answers));
  };
  auto fail = [state, promise](caf::error error) mutable {
    if (state->failed) return;
    state->failed = true;
    promise.deliver(std::move(error));
  };
  self->request(self->state.local, caf::infinite, atom, call).then(answer, fail);
  for (auto& [node, link] : self->state.peers) {
    if (!link.is_member) continue;
    auto unreachable_node = [node = node, &link = link] {
      return actors::to_error(status{
          status_code::unavailable,
          fmt::format("{} must run on every node, and node '{}' ({}:{}) is unreachable; retry "
                      "later",
                      "this call", node, link.info.host, link.info.port)});
    };
    with_peer(
        self, link,
        [self, atom, call, answer, fail, unreachable_node](const directory_actor* remote) mutable {
          if (remote == nullptr) {
            fail(unreachable_node());
            return;
          }
          self->request(*remote, caf::duration{self->state.settings.call_timeout}, atom, call)
              .then(answer, [fail, unreachable_node](caf::error& error) mutable {
                fail(is_transport_error(error) ? unreachable_node() : std::move(error));
              });
        });
  }
  return promise;
}

void deliver_held(router_pointer self, peer_link& link);

// Sends up to delivery_batch held writes to `link`'s node (connected) and
// deletes each one the owner stored; continues while more are held.
void send_held_batch(router_pointer self, peer_link& link, const directory_actor& remote) {
  auto& st = self->state;
  auto prefix = storage::keys::handoff_prefix(link.info.node_id);
  if (!prefix.ok()) return;
  struct held_write {
    uint64_t sequence;
    handoff_message message;
  };
  std::vector<held_write> batch;
  const status scanned = st.store->scan_range(
      storage::handoff_family, *prefix, storage::keys::prefix_successor(*prefix),
      [&](std::string_view key, std::string_view value) {
        auto sequence = storage::keys::handoff_sequence(key);
        if (sequence && link.erasing.contains(*sequence)) return true;
        auto message = decode_handoff(self->system(), value);
        if (!sequence || !message.ok()) {
          observability::log_error("cluster: unreadable handoff record for {} kept in place",
                                   link.info.node_id);
          return true;
        }
        batch.push_back({*sequence, std::move(message).value()});
        return batch.size() < st.settings.delivery_batch;
      });
  if (!scanned.ok() || batch.empty()) {
    if (!scanned.ok()) observability::log_error("cluster: {}", scanned.message());
    return;
  }
  link.delivering = true;
  auto remaining = std::make_shared<size_t>(batch.size());
  auto failed = std::make_shared<bool>(false);
  auto node = link.info.node_id;
  auto done = [self, node, remaining, failed](std::optional<uint64_t> delivered,
                                              const caf::error* error) {
    auto& peer = self->state.peers.at(node);
    if (delivered) {
      storage::write_set erase;
      erase.erase_handoff(node, *delivered);
      peer.erasing.insert(*delivered);
      self->state.store->commit(std::move(erase), [router = caf::actor_cast<router_actor>(self),
                                                   node, sequence = *delivered](status) {
        // Failed or not, stop skipping it: a record still on disk is
        // delivered again (harmless) and only then counted.
        caf::anon_send(router, erased_atom::value, node, sequence);
      });
      peer.held--;
      self->state.gauges->handoff_pending--;
      self->state.gauges->handoff_delivered++;
    } else if (!*failed) {
      *failed = true;
      // A fence refusal is not the link's fault: retried once our placement is current.
      if (error == nullptr || !is_fence_refusal(*error)) {
        mark_unreachable(self, peer, error ? caf::to_string(*error) : "unknown");
      }
    }
    if (--*remaining == 0) {
      peer.delivering = false;
      if (!*failed && peer.held > 0) deliver_held(self, peer);
    }
  };
  const caf::duration timeout{st.settings.peer_timeout};
  const auto router = caf::actor_cast<directory_actor>(self);
  for (auto& held : batch) {
    auto on_error = [done](caf::error& error) { done(std::nullopt, &error); };
    const uint64_t sequence = held.sequence;
    const std::string customer = handoff_customer(held.message);
    // A write held for a node that no longer owns its customer (the
    // placement moved on) goes through this router again, to the owner.
    const bool reroute = remote == router || st.members->owner_of(customer).node_id != node;
    if (auto* part = std::get_if<model::customer_part>(&held.message)) {
      auto sent = reroute
                      ? self->request(router, timeout, actors::append_atom::value, std::move(*part))
                      : request_peer(self, remote, timeout, customer, actors::append_atom::value,
                                     std::move(*part));
      std::move(sent).then(
          [done, sequence](std::vector<model::item_outcome>&) { done(sequence, nullptr); },
          on_error);
    } else {
      auto& op = std::get<model::metald_op>(held.message);
      auto sent = reroute
                      ? self->request(router, timeout, actors::metald_atom::value, std::move(op))
                      : request_peer(self, remote, timeout, customer, actors::metald_atom::value,
                                     std::move(op));
      std::move(sent).then([done, sequence](uint32_t) { done(sequence, nullptr); }, on_error);
    }
  }
}

void deliver_held(router_pointer self, peer_link& link) {
  if (link.held == 0 || link.delivering) return;
  if (!link.is_member) {
    // Its customers have other owners now: each held write goes through this
    // router again (to the new owner, or held for it), and its record here is
    // deleted once that is acknowledged.
    send_held_batch(self, link, caf::actor_cast<directory_actor>(self));
    return;
  }
  with_peer(self, link, [self, node = link.info.node_id](const directory_actor* remote) {
    auto& peer = self->state.peers.at(node);
    if (remote != nullptr && !peer.delivering) send_held_batch(self, peer, *remote);
  });
}

// Counts the writes held for each node (from an earlier run; a node no
// longer a member gets a link too, to re-route them) and finds the next free
// sequence number.
status load_held(router_state& st) {
  auto scanned = st.store->scan_range(
      storage::handoff_family, "", std::nullopt, [&](std::string_view key, std::string_view) {
        auto node = storage::keys::handoff_node(key);
        auto sequence = storage::keys::handoff_sequence(key);
        if (!node || !sequence || *node == st.members->self().node_id) return true;
        auto [link, added] = st.peers.try_emplace(*node);
        if (added) {
          link->second.info.node_id = *node;
          link->second.is_member = false;
        }
        link->second.held++;
        st.gauges->handoff_pending++;
        st.next_sequence = std::max(st.next_sequence, *sequence + 1);
        return true;
      });
  return scanned;
}

// Takes the new member set: links for new members, and members gone are
// marked (their held writes are re-routed on the next tick).
void update_members(router_pointer self, std::vector<member> members,
                    std::vector<shard_assignment> shards, bool leaving) {
  auto& st = self->state;
  const member me = st.members->self();
  auto made = leaving ? membership::leaving(me, members) : membership::make(members, me.node_id);
  if (!made.ok()) {
    observability::log_error("cluster: member set refused: {}", made.error().message());
    return;
  }
  made.value().set_shards(std::move(shards));
  std::set<std::string> current;
  for (const auto& m : made.value().members()) {
    if (m.node_id == me.node_id) continue;
    current.insert(m.node_id);
    auto [link, added] = st.peers.try_emplace(m.node_id);
    auto& peer = link->second;
    if (!added && peer.info != m && peer.remote) {
      mark_unreachable(self, peer, "its address changed");
      peer.retry_at = clock::now();
    }
    peer.info = m;
    if (!peer.is_member || added) peer.retry_at = clock::now();
    peer.is_member = true;
  }
  for (auto& [node, peer] : st.peers) {
    if (!current.contains(node)) peer.is_member = false;
  }
  st.members.emplace(std::move(made).value());
}

router_actor::behavior_type node_router(router_pointer self, membership members,
                                        router_settings settings,
                                        local_directory_factory make_local,
                                        std::shared_ptr<storage::ledger_store> store,
                                        std::shared_ptr<cluster_gauges> gauges) {
  auto& st = self->state;
  st.settings = settings;
  st.store = std::move(store);
  st.gauges = std::move(gauges);
  for (const auto& m : members.members()) {
    if (m.node_id == members.self().node_id) continue;
    peer_link link;
    link.info = m;
    st.peers.emplace(m.node_id, std::move(link));
  }
  st.members.emplace(std::move(members));
  // Before load_held, which adds links only for nodes not in the list.
  st.local = make_local(caf::actor_cast<directory_actor>(self));
  self->link_to(st.local);
  if (status loaded = load_held(st); !loaded.ok()) {
    observability::log_error("cluster: cannot read held writes: {}", loaded.message());
  }
  self->set_down_handler([self](caf::down_msg& down) {
    for (auto& [node, link] : self->state.peers) {
      if (link.remote && link.remote.address() == down.source) {
        mark_unreachable(self, link, "connection lost: " + caf::to_string(down.reason));
        link.retry_at = clock::now();  // it may come back at once (a restart)
      }
    }
  });
  self->send(self, tick_atom::value);
  return {
      [self](actors::ingest_atom atom,
             model::ingest_batch& batch) -> caf::delegated<model::ingest_report> {
        return self->delegate(self->state.local, atom, std::move(batch));
      },
      [self](actors::append_atom atom,
             model::customer_part& part) -> caf::result<std::vector<model::item_outcome>> {
        return route_write<std::vector<model::item_outcome>>(self, atom, part);
      },
      [self](actors::metald_atom atom, model::metald_op& op) -> caf::result<uint32_t> {
        return route_write<uint32_t>(self, atom, op);
      },
      [self](actors::usage_atom atom,
             model::usage_query& query) -> caf::result<model::customer_usage> {
        return route_read<model::customer_usage>(self, atom, query);
      },
      [self](actors::window_atom atom,
             model::window_query& query) -> caf::result<model::billing_window> {
        return route_read<model::billing_window>(self, atom, query);
      },
      [self](actors::subscribe_atom atom, std::string& customer_id,
             actors::subscriber_actor& subscriber) -> caf::result<model::usage_update> {
        // Delegated, so that the owner's ledger answers the subscriber's
        // bridge itself: the stream watches that ledger (across nodes, its
        // proxy), and ends when it or its node goes away.
        auto& st = self->state;
        const auto& owner = st.members->owner_of(customer_id);
        if (owner.node_id == st.members->self().node_id) {
          return self->delegate(st.local, atom, std::move(customer_id), std::move(subscriber));
        }
        auto promise = self->make_response_promise<model::usage_update>();
        with_peer(
            self, st.peers.at(owner.node_id),
            [self, atom, promise, node = owner.node_id, customer_id,
             subscriber](const directory_actor* remote) mutable {
              if (remote == nullptr) {
                promise.deliver(
                    actors::to_error(unreachable(self->state.peers.at(node), customer_id)));
                return;
              }
              const auto& view = *self->state.members;
              if (view.shards().empty()) {
                promise.delegate(*remote, atom, std::move(customer_id), std::move(subscriber));
                return;
              }
              const auto fence = view.fence_of(customer_id);
              promise.delegate(caf::actor_cast<fenced_directory_actor>(*remote), fenced_atom::value,
                               fence, atom, std::move(customer_id), std::move(subscriber));
            });
        return promise;
      },
      [self](actors::import_atom atom, storage::customer_records& moved) -> caf::result<uint32_t> {
        return route_read<uint32_t>(self, atom, moved);
      },
      [self](actors::call_atom atom,
             actors::forwarded_call& call) -> caf::result<std::vector<std::string>> {
        if (call.customer_id.empty()) return broadcast_call(self, atom, call);
        return route_read<std::vector<std::string>>(self, atom, call);
      },
      [self](actors::locate_atom atom, std::string& vm_id) -> caf::result<std::string> {
        // The vm index lives where the VM's customer is owned: ask here, then
        // every peer; the first that knows the VM answers.
        auto promise = self->make_response_promise<std::string>();
        auto askers = std::make_shared<std::vector<directory_actor>>();
        askers->push_back(self->state.local);
        for (auto& [node, link] : self->state.peers) {
          if (link.remote && link.is_member) askers->push_back(link.remote);
        }
        auto remaining = std::make_shared<size_t>(askers->size());
        auto answered = std::make_shared<bool>(false);
        for (auto& target : *askers) {
          self->request(target, caf::duration{self->state.settings.peer_timeout}, atom, vm_id)
              .then(
                  [promise, remaining, answered](std::string& customer) mutable {
                    if (!*answered && (!customer.empty() || *remaining == 1)) {
                      *answered = true;
                      promise.deliver(std::move(customer));
                    }
                    --*remaining;
                  },
                  [promise, remaining, answered](caf::error&) mutable {
                    if (!*answered && *remaining == 1) {
                      *answered = true;
                      promise.deliver(std::string{});
                    }
                    --*remaining;
                  });
        }
        return promise;
      },
      [self](actors::forget_atom atom, std::string& customer_id) -> caf::delegated<bool> {
        return self->delegate(self->state.local, atom, std::move(customer_id));
      },
      [self](local_atom) { return self->state.local; },
      [self](held_atom, uint64_t ticket, uint8_t code, std::string& message) {
        self->state.holds_in_commit.complete(ticket, code, std::move(message));
      },
      [self](erased_atom, const std::string& node, uint64_t sequence) {
        self->state.peers.at(node).erasing.erase(sequence);
      },
      [self](members_atom, std::vector<member>& members, std::vector<shard_assignment>& shards,
             bool leaving) {
        update_members(self, std::move(members), std::move(shards), leaving);
      },
      [self](tick_atom) {
        for (auto& [node, link] : self->state.peers) deliver_held(self, link);
        self->delayed_send(self, self->state.settings.retry_interval, tick_atom::value);
      },
  };
}

}  // namespace

result<cluster_node> spawn_cluster_node(caf::actor_system& system, membership members,
                                        router_settings settings,
                                        const local_directory_factory& make_local,
                                        std::shared_ptr<storage::ledger_store> store,
                                        std::shared_ptr<cluster_gauges> gauges) {
  const std::string self_id = members.self().node_id;
  auto router = system.spawn(node_router, std::move(members), settings, make_local,
                             std::move(store), std::move(gauges));
  caf::scoped_actor asker{system};
  result<cluster_node> node = status{status_code::internal, "the node router did not answer"};
  asker->request(router, caf::infinite, local_atom::value)
      .receive(
          [&](directory_actor& local) {
            node = cluster_node{caf::actor_cast<directory_actor>(router), std::move(local), {}};
          },
          [&](caf::error& error) { node = actors::to_status(error); });
  if (node.ok() && settings.fenced) {
    auto refused = settings.fence_refused ? settings.fence_refused
                                          : std::make_shared<std::atomic<uint64_t>>(0);
    node.value().fence = spawn_fence(system, node.value().local, self_id, std::move(refused));
  }
  return node;
}

void send_members(const actors::directory_actor& router, std::vector<member> members,
                  std::vector<shard_assignment> shards, bool leaving) {
  caf::anon_send(caf::actor_cast<router_actor>(router), members_atom::value, std::move(members),
                 std::move(shards), leaving);
}

result<uint16_t> publish_local_directory(caf::actor_system& system, const cluster_node& node,
                                         const membership& members, const router_settings& settings,
                                         const std::string& bind_address) {
  const char* address = bind_address.empty() ? nullptr : bind_address.c_str();
  const uint16_t port = members.self().port;
  const caf::actor published_actor = node.fence ? caf::actor_cast<caf::actor>(node.fence)
                                                : caf::actor_cast<caf::actor>(node.local);
  auto published = settings.tls ? caf::openssl::publish(published_actor, port, address, true)
                                : system.middleman().publish(published_actor, port, address, true);
  if (!published) {
    return status{status_code::unavailable,
                  fmt::format("cannot listen for cluster peers on {}:{}: {}",
                              bind_address.empty() ? "*" : bind_address, port,
                              system.render(published.error()))};
  }
  return *published;
}

}  // namespace billing::cluster
