#include "gateway/services/invoice_service.hpp"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <caf/all.hpp>

#include <fstream>
#include <sstream>

#include "billing/v1/invoice.pb.h"
#include "gateway/services/access.hpp"
#include "gateway/services/actor_bridge.hpp"
#include "gateway/services/convert.hpp"
#include "gateway/services/invoice_convert.hpp"

namespace billing::gateway {
namespace {

constexpr std::string_view kInvoicePrefix = "/billing.v1.BillingInvoiceService/";

// Who the audit trail names until authentication supplies the caller.

// An empty id is the default plan where `allow_default`; otherwise ids are
// checked like on ingest.
status check_customer(const std::string& customer_id, const model::validation_limits& limits,
                      bool allow_default) {
  if (customer_id.empty() && allow_default) return status::ok_status();
  return model::check_id("customer_id", customer_id, limits);
}

result<int64_t> period_start(bool present, const google::protobuf::Timestamp& ts) {
  if (!present) return status{status_code::invalid_argument, "period_start is required"};
  const int64_t start = to_unix_ns(ts);
  if (auto period = model::monthly_period(start); !period.ok()) return period.error();
  return start;
}

// The blocking part of a call, run on a detached actor once the request
// passed the handler's cheap checks.
template <class Response>
using blocking_work = std::function<result<Response>()>;

// Binds `path` to `prepare`, which checks a request on the io thread and
// returns the work to run off it (blocking on RocksDB) or the error to answer.
template <class Request, class Response, class Prepare>
void add_blocking(connect_router& router, caf::actor_system& system, std::string_view method,
                  Prepare prepare) {
  router.add_unary<Request, Response>(
      std::string{kInvoicePrefix} + std::string{method},
      [&system, prepare = std::move(prepare)](const call_context& context, Request request,
                                              responder<Response> respond) {
        result<blocking_work<Response>> work = prepare(context, request);
        if (!work.ok()) {
          respond(work.error());
          return;
        }
        run_detached<Response>(system, std::move(respond), std::move(work).value());
      });
}

// The answer of a model call as a response.
template <class Response, class Answer, class Convert>
result<Response> converted(result<Answer> answer, Convert convert) {
  if (!answer.ok()) return answer.error();
  return convert(answer.value());
}

template <class Response>
Response plan_response(const std::vector<model::plan_version>& versions) {
  Response response;
  for (const auto& version : versions) *response.add_versions() = to_proto(version);
  return response;
}

template <class Response>
Response invoices_response(const std::vector<model::invoice>& invoices) {
  Response response;
  for (const auto& bill : invoices) *response.add_invoices() = to_proto(bill);
  return response;
}

v1::GetInvoiceResponse invoice_response(const model::invoice& bill) {
  v1::GetInvoiceResponse response;
  *response.mutable_invoice() = to_proto(bill);
  return response;
}

}  // namespace

status apply_plans_file(const std::string& path, actors::invoicing& invoicing) {
  std::ifstream file(path);
  if (!file) return {status_code::invalid_argument, fmt::format("cannot read {}", path)};
  std::stringstream text;
  text << file.rdbuf();
  v1::PlanFile plans;
  if (auto parsed = google::protobuf::util::JsonStringToMessage(text.str(), &plans); !parsed.ok()) {
    return {status_code::invalid_argument,
            fmt::format("not a billing.v1.PlanFile: {}", parsed.message().as_string())};
  }
  const model::validation_limits limits;
  for (int i = 0; i < plans.plans_size(); ++i) {
    const auto& entry = plans.plans(i);
    auto version = to_plan_version(entry.version());
    status bad = check_customer(entry.customer_id(), limits, true);
    if (bad.ok() && !version.ok()) bad = version.error();
    if (bad.ok()) {
      auto applied = invoicing.set_plan(entry.customer_id(), version.value(), "plans-file");
      if (!applied.ok()) bad = applied.error();
    }
    if (!bad.ok()) return {bad.code(), fmt::format("plans[{}]: {}", i, bad.message())};
  }
  return status::ok_status();
}

void add_invoice_service(connect_router& router, caf::actor_system& system,
                         std::shared_ptr<actors::invoicing> invoicing,
                         model::validation_limits limits,
                         std::shared_ptr<const security::authenticator> auth) {
  using v1::SetCustomerPlanResponse;
  add_blocking<v1::SetCustomerPlanRequest, SetCustomerPlanResponse>(
      router, system, "SetCustomerPlan",
      [invoicing, limits, auth](const call_context& context,
                                const v1::SetCustomerPlanRequest& request)
          -> result<blocking_work<SetCustomerPlanResponse>> {
        auto caller = authorize(auth.get(), context, security::require_admin());
        if (!caller.ok()) return caller.error();
        if (status bad = check_customer(request.customer_id(), limits, true); !bad.ok()) return bad;
        auto version = to_plan_version(request.version());
        if (!version.ok()) return version.error();
        return blocking_work<SetCustomerPlanResponse>([invoicing, customer = request.customer_id(),
                                                       version = std::move(version).value(),
                                                       who = caller->name] {
          return converted<SetCustomerPlanResponse>(invoicing->set_plan(customer, version, who),
                                                    plan_response<SetCustomerPlanResponse>);
        });
      });

  using v1::GetCustomerPlanResponse;
  add_blocking<v1::GetCustomerPlanRequest, GetCustomerPlanResponse>(
      router, system, "GetCustomerPlan",
      [invoicing, limits, auth](const call_context& context,
                                const v1::GetCustomerPlanRequest& request)
          -> result<blocking_work<GetCustomerPlanResponse>> {
        // The default plan ("") is the price list every customer may see.
        auto caller = authorize(auth.get(), context,
                                request.customer_id().empty()
                                    ? security::require_admin()
                                    : security::require_customer(request.customer_id()));
        if (!caller.ok()) return caller.error();
        if (status bad = check_customer(request.customer_id(), limits, true); !bad.ok()) return bad;
        return blocking_work<GetCustomerPlanResponse>(
            [invoicing, customer = request.customer_id()] {
              return converted<GetCustomerPlanResponse>(invoicing->plan(customer),
                                                        plan_response<GetCustomerPlanResponse>);
            });
      });

  using v1::GetInvoiceResponse;
  add_blocking<v1::GetInvoiceRequest, GetInvoiceResponse>(
      router, system, "GetInvoice",
      [invoicing, limits, auth](const call_context& context, const v1::GetInvoiceRequest& request)
          -> result<blocking_work<GetInvoiceResponse>> {
        auto caller =
            authorize(auth.get(), context, security::require_customer(request.customer_id()));
        if (!caller.ok()) return caller.error();
        if (status bad = check_customer(request.customer_id(), limits, false); !bad.ok())
          return bad;
        auto start = period_start(request.has_period_start(), request.period_start());
        if (!start.ok()) return start.error();
        return blocking_work<GetInvoiceResponse>([invoicing, customer = request.customer_id(),
                                                  start = start.value(), who = caller->name] {
          return converted<GetInvoiceResponse>(invoicing->get_invoice(customer, start, who),
                                               invoice_response);
        });
      });

  using v1::ListInvoicesResponse;
  add_blocking<v1::ListInvoicesRequest, ListInvoicesResponse>(
      router, system, "ListInvoices",
      [invoicing, limits, auth](const call_context& context, const v1::ListInvoicesRequest& request)
          -> result<blocking_work<ListInvoicesResponse>> {
        auto caller =
            authorize(auth.get(), context, security::require_customer(request.customer_id()));
        if (!caller.ok()) return caller.error();
        if (status bad = check_customer(request.customer_id(), limits, false); !bad.ok())
          return bad;
        return blocking_work<ListInvoicesResponse>([invoicing, customer = request.customer_id()] {
          return converted<ListInvoicesResponse>(invoicing->list_invoices(customer),
                                                 invoices_response<ListInvoicesResponse>);
        });
      });

  using v1::FinalizeInvoicesResponse;
  add_blocking<v1::FinalizeInvoicesRequest, FinalizeInvoicesResponse>(
      router, system, "FinalizeInvoices",
      [invoicing, limits, auth](const call_context& context,
                                const v1::FinalizeInvoicesRequest& request)
          -> result<blocking_work<FinalizeInvoicesResponse>> {
        auto caller = authorize(auth.get(), context, security::require_admin());
        if (!caller.ok()) return caller.error();
        std::vector<std::string> customers;
        for (const auto& customer : request.customer_ids()) {
          if (status bad = check_customer(customer, limits, false); !bad.ok()) return bad;
          customers.push_back(customer);
        }
        auto start = period_start(request.has_period_start(), request.period_start());
        if (!start.ok()) return start.error();
        return blocking_work<FinalizeInvoicesResponse>([invoicing, customers = std::move(customers),
                                                        start = start.value(), who = caller->name] {
          return converted<FinalizeInvoicesResponse>(invoicing->finalize(start, customers, who),
                                                     invoices_response<FinalizeInvoicesResponse>);
        });
      });
}

}  // namespace billing::gateway
