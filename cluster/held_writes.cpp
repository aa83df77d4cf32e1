// Hinted handoff on the router's side: a write for an owner it cannot reach
// is stored in the local ledger's handoff family, acknowledged once durable,
// and delivered (or re-routed to a new owner) when the owner is back.
#include "actors/errors.hpp"
#include "cluster/handoff.hpp"
#include "cluster/router_state.hpp"
#include "observability/log.hpp"
#include "storage/keys.hpp"

namespace billing::cluster::router_internal {
namespace {

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

template <class Answer, class Write>
void hold_write(router_pointer self, peer_link& link, Write write,
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

}  // namespace

void hold(router_pointer self, peer_link& link, model::customer_part write,
          caf::typed_response_promise<std::vector<model::item_outcome>> promise) {
  hold_write(self, link, std::move(write), std::move(promise));
}

void hold(router_pointer self, peer_link& link, model::metald_op write,
          caf::typed_response_promise<uint32_t> promise) {
  hold_write(self, link, std::move(write), std::move(promise));
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

}  // namespace billing::cluster::router_internal
