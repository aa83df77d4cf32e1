// Binds billing.v1.BillingCollectorService to the actors: decoded requests
// become ingest batches for the directory; reports become responses.
#pragma once

#include <memory>

#include "actors/messages.hpp"
#include "gateway/connect_server.hpp"
#include "model/validation.hpp"
#include "observability/metrics.hpp"

namespace billing::gateway {

struct collector_settings {
  // Most metrics one SendMetricsBatch may carry.
  uint32_t max_batch_items = 10'000;
  model::validation_limits limits;
  // Counts every ingest's outcomes; may be null.
  std::shared_ptr<observability::service_metrics> metrics;
};

void add_collector_service(connect_router& router, caf::actor_system& system,
                           actors::directory_actor directory, collector_settings settings);

}  // namespace billing::gateway
