// Binds billing.v1.BillingCollectorService to the actors: decoded requests
// become ingest batches for the directory; reports become responses.
#pragma once

#include <memory>

#include "actors/messages.hpp"
#include "gateway/connect_server.hpp"
#include "model/validation.hpp"
#include "observability/metrics.hpp"
#include "security/admission.hpp"
#include "security/auth.hpp"

namespace billing::gateway {

struct collector_settings {
  // Most metrics one SendMetricsBatch may carry.
  uint32_t max_batch_items = 10'000;
  model::validation_limits limits;
  // Counts every ingest's outcomes; may be null.
  std::shared_ptr<observability::service_metrics> metrics;
  // Who may send metrics (the `ingest` scope); null refuses every call.
  std::shared_ptr<const security::authenticator> auth;
  // Per-source request rate (source: the token's name, or the peer's address
  // without auth); null or disabled: no limit.
  std::shared_ptr<security::rate_limiter> rate_limit;
  // Ingest calls being stored at once; beyond it, resource_exhausted. Null:
  // unbounded.
  std::shared_ptr<security::inflight_gate> inflight;
};

void add_collector_service(connect_router& router, caf::actor_system& system,
                           actors::directory_actor directory, collector_settings settings);

}  // namespace billing::gateway
