#include <fmt/format.h>

#include "actors/errors.hpp"
#include "cluster/replication/peer_protocol.hpp"

namespace billing::cluster::replication {

namespace {

// Sends one install step to the replica and hands its answer (a position or
// an error) to `waiter` as an ordinary message: the waiter then also sees
// the replica's down message. CAF 0.17 leaves a request to a remote actor
// that died unanswered until its timeout (actor-framework#1466), and a
// blocking wait for a response sees no other message; so a sender to a
// killed replica held its thread, the leader's next snapshot to that node
// and this node's shutdown for the whole step timeout.
caf::behavior step_relay(caf::event_based_actor* self, caf::actor waiter, snapshot_job job) {
  return {
      [self, waiter, job](install_atom atom, uint8_t phase,
                          std::vector<storage::stored_record>& records, storage::log_position at) {
        self->request(job.target, job.step_timeout, atom, job.selector.shard, job.epoch, phase,
                      std::move(records), at)
            .then(
                [self, waiter](storage::log_position installed) {
                  self->send(waiter, install_atom::value, installed);
                  self->quit();
                },
                [self, waiter](caf::error& error) {
                  self->send(waiter, install_atom::value, std::move(error));
                  self->quit();
                });
      },
  };
}

// One install step on the replica, waited for until answered or the replica
// is down (`blocking` monitors it).
status install_step(caf::scoped_actor& blocking, const snapshot_job& job, uint8_t phase,
                    std::vector<storage::stored_record> records, storage::log_position at) {
  auto relay = blocking->spawn(step_relay, caf::actor_cast<caf::actor>(blocking), job);
  blocking->send(relay, install_atom::value, phase, std::move(records), at);
  status outcome;
  bool settled = false;
  auto failed = [&](const std::string& why) {
    outcome = {status_code::unavailable, fmt::format("installing the snapshot failed: {}", why)};
    settled = true;
  };
  blocking->receive_while([&] { return !settled; })(
      [&](install_atom, storage::log_position) { settled = true; },
      [&](install_atom, caf::error& error) { failed(caf::to_string(error)); },
      [&](caf::down_msg& down) {
        if (down.source != job.target.address()) return;
        caf::anon_send_exit(relay, caf::exit_reason::user_shutdown);
        failed(fmt::format("the replica went away ({})", caf::to_string(down.reason)));
      });
  return outcome;
}

}  // namespace

caf::behavior snapshot_sender(caf::event_based_actor* self, snapshot_job job) {
  return {
      [self, job](snapshot_atom) -> caf::result<storage::log_position> {
        // This actor is detached: blocking on the replica's answers here
        // blocks only its own thread.
        caf::scoped_actor blocking{self->system()};
        blocking->monitor(job.target);
        storage::log_position at;
        status sent = export_shard(
            *job.store, job.selector, job.chunk_bytes,
            [&](const storage::log_position& position) {
              at = position;
              return install_step(blocking, job, install_begin, {}, position);
            },
            [&](std::vector<storage::stored_record>& records, bool last) {
              if (status put = install_step(blocking, job, install_records, std::move(records), at);
                  !put.ok()) {
                return put;
              }
              return last ? install_step(blocking, job, install_end, {}, at) : status::ok_status();
            });
        self->quit();
        if (!sent.ok()) return actors::to_error(sent);
        return at;
      },
  };
}

}  // namespace billing::cluster::replication
