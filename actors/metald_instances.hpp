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
//
// NotifyVmStopped after a VM's last sample is held (model::vm_state::
// stop_pending) for its final batch: this actor finishes it after the stop
// grace, and at start finishes every held stop found in the store (after the
// grace from the start, since metald may still deliver the batch).
//
// A VM a heartbeat lists that we have never seen (no start, no samples) has no
// customer yet, so no customer's GetBillingWindow can show it: it is logged
// and remembered (in memory) with the first heartbeat that listed it. Once it
// is known (its vm_index entry exists at a later heartbeat of the instance),
// the stretch from that heartbeat to its session start (start notification or
// first sample) is recorded as a gap of the VM, if it is at least
// gap_after_ns. A VM the instance stops listing before it is known is
// forgotten; after a billingd restart, listings count from the next heartbeat.
#pragma once

#include <caf/all.hpp>

#include <chrono>
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
using held_stop_atom = caf::atom_constant<caf::atom("heldstop")>;

using instances_actor = caf::typed_actor<
    // SendHeartbeat(instance_id, active_vms): answers true once durable.
    caf::replies_to<heartbeat_atom, std::string, std::vector<std::string>>::with<bool>,
    // GetActiveBillingSessions(instance_id).
    caf::replies_to<sessions_atom, std::string>::with<std::vector<model::metald_session>>,
    // NotifyVmStopped of (customer, vm) was applied: after the stop grace, its
    // held stop (if any) is finished, writing its closing window.
    caf::reacts_to<held_stop_atom, std::string, std::string>,
    // Internal: the timeout sweep's timer.
    caf::reacts_to<sweep_atom>,
    // Internal: the store finished commit `id` with the status (code, message).
    caf::reacts_to<committed_atom, uint64_t, uint8_t, std::string>>;

struct instances_settings {
  int64_t heartbeat_timeout_ns = int64_t{120} * 1'000'000'000;
  // The region of metald's VMs (op.region of the timeout ops).
  std::string region = "default";
  // --expected-cadence-seconds: a VM listed as active this long before its
  // first sample (or start) has that stretch recorded as a gap.
  int64_t gap_after_ns = int64_t{60} * 1'000'000'000;
  // --metald-stop-grace-seconds: how long a stop waits for the VM's final
  // batch (metald sends it up to ~15 s after the stop) before its closing
  // window is written.
  std::chrono::milliseconds stop_grace{30'000};
};

instances_actor spawn_metald_instances(caf::actor_system& system, instances_settings settings,
                                       directory_actor directory,
                                       std::shared_ptr<storage::ledger_store> store);

}  // namespace billing::actors
