// Binds billing.v1.BillingQueryService to the actors: GetCustomerUsage and
// GetBillingWindow go to the directory's query workers (StreamLiveUsage is
// bound by add_live_usage_stream once the gateway streams).
#pragma once

#include <caf/actor_system.hpp>

#include "actors/messages.hpp"
#include "gateway/connect_server.hpp"
#include "model/validation.hpp"
#include "security/auth.hpp"

namespace billing::gateway {

struct query_service_settings {
  // Limits on ids (customer_id is checked like on ingest).
  model::validation_limits limits;
  // Every call needs `customer:<the request's customer_id>` or `admin`
  // (gateway::authorize); null refuses every call.
  std::shared_ptr<const security::authenticator> auth;
};

// The checks every query makes before anything reaches an actor: the caller
// may read `customer_id` (its own `customer:<id>` scope, or `admin`:
// unauthenticated / permission_denied otherwise), and the id is valid
// (invalid_argument).
status check_customer_call(const query_service_settings& settings, const call_context& context,
                           const std::string& customer_id);

void add_query_service(connect_router& router, caf::actor_system& system,
                       actors::directory_actor directory, query_service_settings settings);

}  // namespace billing::gateway
