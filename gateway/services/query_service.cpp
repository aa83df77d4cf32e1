#include "gateway/services/query_service.hpp"

#include "gateway/services/access.hpp"
#include "gateway/services/actor_bridge.hpp"
#include "gateway/services/convert.hpp"

namespace billing::gateway {
namespace {

constexpr std::string_view kQueryPrefix = "/billing.v1.BillingQueryService/";

// Completes `respond` with the proto form of a model answer.
template <class Response, class Answer>
std::function<void(result<Answer>)> answer_with(responder<Response> respond) {
  return [respond = std::move(respond)](result<Answer> answer) {
    if (!answer.ok()) {
      respond(answer.error());
      return;
    }
    respond(to_proto(answer.value()));
  };
}

}  // namespace

status check_customer_call(const query_service_settings& settings, const call_context& context,
                           const std::string& customer_id) {
  auto caller = authorize(settings.auth.get(), context, security::require_customer(customer_id));
  if (!caller.ok()) return caller.error();
  return model::check_id("customer_id", customer_id, settings.limits);
}

void add_query_service(connect_router& router, caf::actor_system& system,
                       actors::directory_actor directory, query_service_settings settings) {
  router.add_unary<v1::GetCustomerUsageRequest, v1::GetCustomerUsageResponse>(
      std::string{kQueryPrefix} + "GetCustomerUsage",
      [&system, directory, settings](const call_context& context,
                                     v1::GetCustomerUsageRequest request,
                                     responder<v1::GetCustomerUsageResponse> respond) {
        if (status bad = check_customer_call(settings, context, request.customer_id()); !bad.ok()) {
          respond(bad);
          return;
        }
        auto query = to_usage_query(request);
        if (!query.ok()) {
          respond(query.error());
          return;
        }
        ask<model::customer_usage>(
            system, directory, time_left(context),
            answer_with<v1::GetCustomerUsageResponse, model::customer_usage>(std::move(respond)),
            actors::usage_atom::value, std::move(query).value());
      });

  router.add_unary<v1::GetBillingWindowRequest, v1::GetBillingWindowResponse>(
      std::string{kQueryPrefix} + "GetBillingWindow",
      [&system, directory, settings](const call_context& context,
                                     v1::GetBillingWindowRequest request,
                                     responder<v1::GetBillingWindowResponse> respond) {
        if (status bad = check_customer_call(settings, context, request.customer_id()); !bad.ok()) {
          respond(bad);
          return;
        }
        ask<model::billing_window>(
            system, directory, time_left(context),
            answer_with<v1::GetBillingWindowResponse, model::billing_window>(std::move(respond)),
            actors::window_atom::value, to_window_query(request));
      });
}

}  // namespace billing::gateway
