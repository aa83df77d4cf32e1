#include "cluster/node_router.hpp"

#include <fmt/format.h>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <set>

#include "actors/errors.hpp"
#include "cluster/router_state.hpp"
#include "observability/log.hpp"

namespace billing::cluster {
namespace router_internal {
namespace {

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
}  // namespace router_internal

using actors::directory_actor;
using router_internal::local_atom;
using router_internal::members_atom;
using router_internal::node_router;
using router_internal::router_actor;

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
