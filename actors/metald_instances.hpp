// The node's metald instances: their heartbeats (durable, storage family
// metald_instances), the heartbeat timeout, and which VMs each one runs.
//
// An instance silent for longer than the timeout has the open sessions of the
// VMs its last heartbeat listed ended at that heartbeat (a timeout op to each
// VM's customer ledger), and is then recorded as timed out; samples that
// resume reopen a session. The sweep runs on a timer and again after a
// restart (timed_out is only recorded once every VM's ledger has applied it,
// and applying it twice changes nothing); after a restart, silence counts
// from the restart at the earliest (metald could not reach us before), while
// sessions still end at the last heartbeat received.
#pragma once

#include <caf/all.hpp>

#include <memory>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "model/metald.hpp"
#include "storage/ledger_store.hpp"

namespace billing::actors {

using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
using sessions_atom = caf::atom_constant<caf::atom("sessions")>;
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;

using instances_actor = caf::typed_actor<
    // SendHeartbeat(instance_id, active_vms): answers true once durable.
    caf::replies_to<heartbeat_atom, std::string, std::vector<std::string>>::with<bool>,
    // GetActiveBillingSessions(instance_id).
    caf::replies_to<sessions_atom, std::string>::with<std::vector<model::metald_session>>,
    // Internal: the timeout sweep's timer.
    caf::reacts_to<sweep_atom>,
    // Internal: the store finished commit `id` with the status (code, message).
    caf::reacts_to<committed_atom, uint64_t, uint8_t, std::string>>;

struct instances_settings {
  int64_t heartbeat_timeout_ns = int64_t{120} * 1'000'000'000;
  // The region of metald's VMs (op.region of the timeout ops).
  std::string region = "default";
};

instances_actor spawn_metald_instances(caf::actor_system& system, instances_settings settings,
                                       directory_actor directory,
                                       std::shared_ptr<storage::ledger_store> store);

}  // namespace billing::actors
