#include <fmt/format.h>

#include "actors/errors.hpp"
#include "cluster/replication/peer_protocol.hpp"

namespace billing::cluster::replication {

namespace {

// One install step on the replica, waited for.
status install_step(caf::scoped_actor& blocking, const snapshot_job& job, uint8_t phase,
                    std::vector<storage::stored_record> records, storage::log_position at) {
  status outcome;
  blocking
      ->request(job.target, job.step_timeout, install_atom::value, job.selector.shard, job.epoch,
                phase, std::move(records), at)
      .receive([](storage::log_position) {},
               [&](caf::error& error) {
                 outcome = {
                     status_code::unavailable,
                     fmt::format("installing the snapshot failed: {}", caf::to_string(error))};
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
