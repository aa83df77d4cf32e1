// Binds the legacy metald surface, billing.v1.BillingService
// (protocol/billing/v1/metald.proto), to the customer ledgers: samples and
// lifecycle notifications become metald ops (model/metald.hpp) applied by the
// VM's customer actor; heartbeats go to the metald instances actor.
#pragma once

#include <memory>
#include <string>

#include "actors/messages.hpp"
#include "actors/metald_instances.hpp"
#include "gateway/connect_server.hpp"
#include "model/validation.hpp"
#include "security/auth.hpp"
#include "storage/ledger_store.hpp"

namespace billing::gateway {

struct metald_settings {
  // metald's API names no region: its VMs are filed under this one.
  std::string region = "default";
  // Bearer tokens; every call needs the ingest scope for `region`.
  std::shared_ptr<const security::authenticator> auth;
  // Most samples one SendMetricsBatch may carry.
  uint32_t max_samples = 10'000;
  model::validation_limits limits;
  // A hole this long in a VM's samples is recorded as a gap (0: never).
  int64_t gap_after_ns = int64_t{60} * 1'000'000'000;
};

void add_metald_service(connect_router& router, caf::actor_system& system,
                        actors::directory_actor directory, actors::instances_actor instances,
                        metald_settings settings);

}  // namespace billing::gateway
