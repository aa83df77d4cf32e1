#include "cluster/replication/replicator_state.hpp"

#include <fmt/format.h>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <algorithm>
#include <functional>
#include <set>

#include "actors/errors.hpp"
#include "cluster/fence.hpp"
#include "cluster/placement.hpp"
#include "observability/log.hpp"

namespace billing::cluster::replication::detail {

using clock = std::chrono::steady_clock;

size_t majority(size_t replicas) {
  return replicas / 2 + 1;
}

caf::error refusal(uint32_t shard, uint64_t epoch, uint64_t promised) {
  return actors::to_error(
      status{status_code::aborted, fmt::format("shard {}: epoch {} is stale (this replica knows "
                                               "epoch {})",
                                               shard, epoch, promised)});
}

shard_selector selector_of(pointer self, uint32_t shard) {
  return {shard, self->state.terms->shard_count(), &cluster::shard_of};
}

log_position local_position(pointer self, uint32_t shard) {
  auto& st = self->state;
  if (auto found = st.positions.find(shard); found != st.positions.end()) return found->second;
  auto read = st.store->shard_position(shard);
  if (!read.ok()) {
    observability::log_warn("replication: shard {}: {}", shard, read.error().message());
    return {};
  }
  st.positions[shard] = read.value();
  return read.value();
}

void mark_synced(pointer self, uint32_t shard) {
  auto& st = self->state;
  if (st.unsynced.erase(shard) == 0) return;
  // Believed at once: it holds the shard as a leader does. A crash before the
  // write is durable leaves the marker, the cautious side; so does a failure.
  storage::write_set mark;
  mark.mark_synced(shard);
  st.store->commit(std::move(mark), [shard](status done) {
    if (!done.ok()) {
      observability::log_warn("replication: shard {}: clearing its unsynced marker: {}", shard,
                              done.message());
    }
  });
}

// ---- peers ----

void with_peer(pointer self, const std::string& node, std::function<void(const caf::actor*)> go) {
  auto& st = self->state;
  auto found = st.peers.find(node);
  if (found == st.peers.end()) {
    go(nullptr);
    return;
  }
  auto& link = found->second;
  if (link.replicator) {
    go(&link.replicator);
    return;
  }
  if (clock::now() < link.retry_at) {
    go(nullptr);
    return;
  }
  link.waiting.push_back(std::move(go));
  if (link.connecting) return;
  link.connecting = true;
  auto finish = [self, node](bool connected) {
    auto& peer_link = self->state.peers.at(node);
    peer_link.connecting = false;
    if (!connected) peer_link.retry_at = clock::now() + self->state.settings.tick * 5;
    auto waiting = std::move(peer_link.waiting);
    for (auto& next : waiting) next(connected ? &peer_link.replicator : nullptr);
  };
  const auto middleman = st.settings.tls ? self->system().openssl_manager().actor_handle()
                                         : self->system().middleman().actor_handle();
  self->request(middleman, st.settings.peer_timeout, caf::connect_atom::value, link.info.host,
                link.info.port)
      .then(
          [self, node, finish](const caf::node_id&, caf::strong_actor_ptr& ptr,
                               const std::set<std::string>&) {
            if (!ptr) {
              finish(false);
              return;
            }
            auto fence = caf::actor_cast<caf::actor>(std::move(ptr));
            self->request(fence, self->state.settings.peer_timeout, replicator_atom::value)
                .then(
                    [self, node, finish](caf::actor& remote) {
                      auto& peer_link = self->state.peers.at(node);
                      peer_link.replicator = std::move(remote);
                      self->monitor(peer_link.replicator);
                      finish(static_cast<bool>(peer_link.replicator));
                    },
                    [finish](caf::error&) { finish(false); });
          },
          [finish](caf::error&) { finish(false); });
}

void forget_peer(pointer self, const std::string& node) {
  auto found = self->state.peers.find(node);
  if (found == self->state.peers.end()) return;
  found->second.replicator = nullptr;
  found->second.retry_at = clock::now() + self->state.settings.tick * 5;
}
}  // namespace billing::cluster::replication::detail
