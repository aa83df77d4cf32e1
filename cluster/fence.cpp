#include "cluster/fence.hpp"

#include <fmt/format.h>

#include "actors/errors.hpp"
#include "observability/log.hpp"

namespace billing::cluster {

status check_fence(const std::vector<shard_assignment>& known, const std::string& self_id,
                   const shard_fence& fence) {
  if (fence.shard >= known.size()) {
    // No placement known here yet (etcd not read): the sender's is newer.
    return known.empty() ? status::ok_status()
                         : status{status_code::aborted,
                                  fmt::format("shard {} does not exist (the cluster has {})",
                                              fence.shard, known.size())};
  }
  const auto& here = known[fence.shard];
  if (fence.epoch < here.epoch) {
    return {status_code::aborted,
            fmt::format("stale epoch {} for shard {}: its epoch is {} (leader '{}')", fence.epoch,
                        fence.shard, here.epoch, here.leader())};
  }
  if (fence.epoch == here.epoch && here.leader() != self_id) {
    return {status_code::aborted,
            fmt::format("node '{}' does not lead shard {} at epoch {} ('{}' does)", self_id,
                        fence.shard, fence.epoch, here.leader())};
  }
  // A newer epoch than ours names us leader: our view is behind, theirs holds.
  return status::ok_status();
}

namespace {

struct fence_state {
  actors::directory_actor local;
  std::string self_id;
  std::vector<shard_assignment> known;
  std::shared_ptr<std::atomic<uint64_t>> refused;
  caf::actor replicator;  // replicated ledgers: handed to peers that ask
  static inline const char* name = "shard_fence";
};

using fence_pointer = fenced_directory_actor::stateful_pointer<fence_state>;

// Delegates the message to the local directory if the fence holds.
template <class Answer, class... Ts>
caf::result<Answer> pass(fence_pointer self, const shard_fence& fence, Ts&&... xs) {
  auto& st = self->state;
  if (status verdict = check_fence(st.known, st.self_id, fence); !verdict.ok()) {
    (*st.refused)++;
    observability::log_warn("cluster: refused a message: {}", verdict.message());
    return actors::to_error(verdict);
  }
  return self->delegate(st.local, std::forward<Ts>(xs)...);
}

fenced_directory_actor::behavior_type fence(fence_pointer self, actors::directory_actor local,
                                            std::string self_id,
                                            std::shared_ptr<std::atomic<uint64_t>> refused) {
  auto& st = self->state;
  st.local = std::move(local);
  st.self_id = std::move(self_id);
  st.refused = std::move(refused);
  self->link_to(st.local);
  using namespace actors;
  return {
      // Unfenced: the plain directory interface.
      [self](ingest_atom atom, model::ingest_batch& batch) -> caf::delegated<model::ingest_report> {
        return self->delegate(self->state.local, atom, std::move(batch));
      },
      [self](append_atom atom,
             model::customer_part& part) -> caf::delegated<std::vector<model::item_outcome>> {
        return self->delegate(self->state.local, atom, std::move(part));
      },
      [self](usage_atom atom, model::usage_query& query) -> caf::delegated<model::customer_usage> {
        return self->delegate(self->state.local, atom, std::move(query));
      },
      [self](window_atom atom,
             model::window_query& query) -> caf::delegated<model::billing_window> {
        return self->delegate(self->state.local, atom, std::move(query));
      },
      [self](subscribe_atom atom, std::string& customer,
             subscriber_actor& subscriber) -> caf::delegated<model::usage_update> {
        return self->delegate(self->state.local, atom, std::move(customer), std::move(subscriber));
      },
      [self](metald_atom atom, model::metald_op& op) -> caf::delegated<uint32_t> {
        return self->delegate(self->state.local, atom, std::move(op));
      },
      [self](locate_atom atom, std::string& vm) -> caf::delegated<std::string> {
        return self->delegate(self->state.local, atom, std::move(vm));
      },
      [self](import_atom atom, storage::customer_records& moved) -> caf::delegated<uint32_t> {
        return self->delegate(self->state.local, atom, std::move(moved));
      },
      [self](call_atom atom, forwarded_call& call) -> caf::delegated<std::vector<std::string>> {
        return self->delegate(self->state.local, atom, std::move(call));
      },
      [self](forget_atom atom, std::string& customer) -> caf::delegated<bool> {
        return self->delegate(self->state.local, atom, std::move(customer));
      },
      // Fenced: the calls about one customer.
      [self](fenced_atom, const shard_fence& f, append_atom atom, model::customer_part& part) {
        return pass<std::vector<model::item_outcome>>(self, f, atom, std::move(part));
      },
      [self](fenced_atom, const shard_fence& f, metald_atom atom, model::metald_op& op) {
        return pass<uint32_t>(self, f, atom, std::move(op));
      },
      [self](fenced_atom, const shard_fence& f, usage_atom atom, model::usage_query& query) {
        return pass<model::customer_usage>(self, f, atom, std::move(query));
      },
      [self](fenced_atom, const shard_fence& f, window_atom atom, model::window_query& query) {
        return pass<model::billing_window>(self, f, atom, std::move(query));
      },
      [self](fenced_atom, const shard_fence& f, subscribe_atom atom, std::string& customer,
             subscriber_actor& subscriber) {
        return pass<model::usage_update>(self, f, atom, std::move(customer), std::move(subscriber));
      },
      [self](fenced_atom, const shard_fence& f, import_atom atom,
             storage::customer_records& moved) {
        return pass<uint32_t>(self, f, atom, std::move(moved));
      },
      [self](fenced_atom, const shard_fence& f, call_atom atom, forwarded_call& call) {
        return pass<std::vector<std::string>>(self, f, atom, std::move(call));
      },
      [self](shards_atom, std::vector<shard_assignment>& shards) {
        self->state.known = std::move(shards);
      },
      [self](replicator_atom, caf::actor& replicator) {
        self->state.replicator = std::move(replicator);
      },
      [self](replicator_atom) { return self->state.replicator; },
  };
}

}  // namespace

fenced_directory_actor spawn_fence(caf::actor_system& system, actors::directory_actor local,
                                   std::string self_id,
                                   std::shared_ptr<std::atomic<uint64_t>> refused) {
  return system.spawn(fence, std::move(local), std::move(self_id), std::move(refused));
}

}  // namespace billing::cluster
