#include <fmt/format.h>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include "actors/errors.hpp"
#include "cluster/router_state.hpp"
#include "observability/log.hpp"

namespace billing::cluster::router_internal {

bool is_transport_error(const caf::error& error) {
  return error.category() != caf::atom("connect");
}

bool is_fence_refusal(const caf::error& error) {
  return !is_transport_error(error) && actors::to_status(error).code() == status_code::aborted;
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

}  // namespace billing::cluster::router_internal
