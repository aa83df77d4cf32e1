#include "gateway/services/invoice_service.hpp"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <caf/all.hpp>

#include <fstream>
#include <mutex>
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

// The runners of the invoice calls, by method name, on this node's ledger.
using invoice_executors =
    std::map<std::string, std::function<result<std::string>(const actors::forwarded_call&)>>;

// One invoice RPC, split where a cluster splits it: `admit` authorizes and
// checks the request on the node that received it (answering the caller's
// name), `split` names the customers whose owners must run it (one request
// each; "" runs it on every node), `execute` runs it on such a node, and
// `merge` joins the answers of several nodes or customers into one response.
template <class Request, class Response>
struct routed_method {
  std::string_view name;
  std::function<result<std::string>(const call_context&, const Request&)> admit;
  std::function<std::vector<std::pair<std::string, Request>>(const Request&)> split;
  std::function<result<Response>(const Request&, const std::string& who)> execute;
  std::function<Response(std::vector<Response>)> merge;
};

template <class Response>
Response first_answer(std::vector<Response> answers) {
  return answers.empty() ? Response{} : std::move(answers.front());
}

// Adds the runner of `method` (on the node that runs it) to `executors`.
template <class Request, class Response>
void add_executor(invoice_executors& executors, const routed_method<Request, Response>& method) {
  executors.emplace(
      std::string{method.name},
      [execute = method.execute](const actors::forwarded_call& call) -> result<std::string> {
        Request request;
        if (!request.ParseFromString(call.request)) {
          return status{status_code::invalid_argument,
                        "forwarded " + call.method + " request does not parse"};
        }
        auto response = execute(request, call.caller);
        if (!response.ok()) return response.error();
        return response.value().SerializeAsString();
      });
}

// Binds `method` on the gateway: admit, then one forwarded call per split
// part through the directory, then merge.
template <class Request, class Response>
void add_route(connect_router& router, caf::actor_system& system,
               const actors::directory_actor& directory, routed_method<Request, Response> method) {
  router.add_unary<Request, Response>(
      std::string{kInvoicePrefix} + std::string{method.name},
      [&system, directory, method](const call_context& context, Request request,
                                   responder<Response> respond) {
        auto who = method.admit(context, request);
        if (!who.ok()) {
          respond(who.error());
          return;
        }
        auto parts = method.split(request);
        struct gathered {
          std::vector<Response> answers;
          size_t remaining = 0;
          bool failed = false;
          std::mutex mutex;
        };
        auto state = std::make_shared<gathered>();
        state->remaining = parts.size();
        if (parts.empty()) {
          respond(method.merge({}));
          return;
        }
        for (auto& [customer, part] : parts) {
          actors::forwarded_call call{customer, std::string{method.name}, part.SerializeAsString(),
                                      who.value()};
          ask<std::vector<std::string>>(
              system, directory, time_left(context),
              [state, respond, merge = method.merge](result<std::vector<std::string>> answers) {
                std::lock_guard lock(state->mutex);
                if (state->failed) return;
                if (!answers.ok()) {
                  state->failed = true;
                  respond(answers.error());
                  return;
                }
                for (const auto& bytes : answers.value()) {
                  Response response;
                  if (!response.ParseFromString(bytes)) {
                    state->failed = true;
                    respond(status{status_code::internal, "a node answered a malformed response"});
                    return;
                  }
                  state->answers.push_back(std::move(response));
                }
                if (--state->remaining == 0) respond(merge(std::move(state->answers)));
              },
              actors::call_atom::value, std::move(call));
        }
      });
}

// Routed by the request's customer_id.
template <class Request>
std::vector<std::pair<std::string, Request>> by_customer(const Request& request) {
  return {{request.customer_id(), request}};
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

namespace {

// Calls `visit` with the description of every invoice RPC.
template <class Visit>
void visit_invoice_methods(const std::shared_ptr<actors::invoicing>& invoicing,
                           const model::validation_limits& limits,
                           const std::shared_ptr<const security::authenticator>& auth,
                           Visit&& visit) {
  auto admitted = [](const result<security::principal>& caller,
                     status checked) -> result<std::string> {
    if (!caller.ok()) return caller.error();
    if (!checked.ok()) return checked;
    return caller->name;
  };

  using v1::SetCustomerPlanRequest;
  using v1::SetCustomerPlanResponse;
  visit(routed_method<SetCustomerPlanRequest, SetCustomerPlanResponse>{
      "SetCustomerPlan",
      [auth, limits, admitted](const call_context& context, const SetCustomerPlanRequest& request) {
        auto version = to_plan_version(request.version());
        return admitted(authorize(auth.get(), context, security::require_admin()),
                        first_error({check_customer(request.customer_id(), limits, true),
                                     version.ok() ? status::ok_status() : version.error()}));
      },
      // The default plan ("") is every node's: set on all of them.
      by_customer<SetCustomerPlanRequest>,
      [invoicing](const SetCustomerPlanRequest& request, const std::string& who) {
        auto version = to_plan_version(request.version());
        if (!version.ok()) return result<SetCustomerPlanResponse>{version.error()};
        return converted<SetCustomerPlanResponse>(
            invoicing->set_plan(request.customer_id(), version.value(), who),
            plan_response<SetCustomerPlanResponse>);
      },
      first_answer<SetCustomerPlanResponse>});

  using v1::GetCustomerPlanRequest;
  using v1::GetCustomerPlanResponse;
  visit(routed_method<GetCustomerPlanRequest, GetCustomerPlanResponse>{
      "GetCustomerPlan",
      [auth, limits, admitted](const call_context& context, const GetCustomerPlanRequest& request) {
        // The default plan ("") is the price list every customer may see.
        return admitted(authorize(auth.get(), context,
                                  request.customer_id().empty()
                                      ? security::require_admin()
                                      : security::require_customer(request.customer_id())),
                        check_customer(request.customer_id(), limits, true));
      },
      by_customer<GetCustomerPlanRequest>,
      [invoicing](const GetCustomerPlanRequest& request, const std::string&) {
        return converted<GetCustomerPlanResponse>(invoicing->plan(request.customer_id()),
                                                  plan_response<GetCustomerPlanResponse>);
      },
      first_answer<GetCustomerPlanResponse>});

  using v1::GetInvoiceRequest;
  using v1::GetInvoiceResponse;
  visit(routed_method<GetInvoiceRequest, GetInvoiceResponse>{
      "GetInvoice",
      [auth, limits, admitted](const call_context& context, const GetInvoiceRequest& request) {
        auto start = period_start(request.has_period_start(), request.period_start());
        return admitted(
            authorize(auth.get(), context, security::require_customer(request.customer_id())),
            first_error({check_customer(request.customer_id(), limits, false),
                         start.ok() ? status::ok_status() : start.error()}));
      },
      by_customer<GetInvoiceRequest>,
      [invoicing](const GetInvoiceRequest& request, const std::string& who) {
        auto start = period_start(request.has_period_start(), request.period_start());
        if (!start.ok()) return result<GetInvoiceResponse>{start.error()};
        return converted<GetInvoiceResponse>(
            invoicing->get_invoice(request.customer_id(), start.value(), who), invoice_response);
      },
      first_answer<GetInvoiceResponse>});

  using v1::ListInvoicesRequest;
  using v1::ListInvoicesResponse;
  visit(routed_method<ListInvoicesRequest, ListInvoicesResponse>{
      "ListInvoices",
      [auth, limits, admitted](const call_context& context, const ListInvoicesRequest& request) {
        return admitted(
            authorize(auth.get(), context, security::require_customer(request.customer_id())),
            check_customer(request.customer_id(), limits, false));
      },
      by_customer<ListInvoicesRequest>,
      [invoicing](const ListInvoicesRequest& request, const std::string&) {
        return converted<ListInvoicesResponse>(invoicing->list_invoices(request.customer_id()),
                                               invoices_response<ListInvoicesResponse>);
      },
      first_answer<ListInvoicesResponse>});

  using v1::FinalizeInvoicesRequest;
  using v1::FinalizeInvoicesResponse;
  visit(routed_method<FinalizeInvoicesRequest, FinalizeInvoicesResponse>{
      "FinalizeInvoices",
      [auth, limits, admitted](const call_context& context,
                               const FinalizeInvoicesRequest& request) {
        status checked = status::ok_status();
        for (const auto& customer : request.customer_ids()) {
          if (checked.ok()) checked = check_customer(customer, limits, false);
        }
        auto start = period_start(request.has_period_start(), request.period_start());
        if (checked.ok() && !start.ok()) checked = start.error();
        return admitted(authorize(auth.get(), context, security::require_admin()), checked);
      },
      // Every customer with usage: each node finalizes its own. Named
      // customers: each on its owner.
      [](const FinalizeInvoicesRequest& request) {
        std::vector<std::pair<std::string, FinalizeInvoicesRequest>> parts;
        if (request.customer_ids().empty()) return decltype(parts){{"", request}};
        for (const auto& customer : request.customer_ids()) {
          FinalizeInvoicesRequest one = request;
          one.clear_customer_ids();
          one.add_customer_ids(customer);
          parts.emplace_back(customer, std::move(one));
        }
        return parts;
      },
      [invoicing](const FinalizeInvoicesRequest& request, const std::string& who) {
        auto start = period_start(request.has_period_start(), request.period_start());
        if (!start.ok()) return result<FinalizeInvoicesResponse>{start.error()};
        std::vector<std::string> customers(request.customer_ids().begin(),
                                           request.customer_ids().end());
        return converted<FinalizeInvoicesResponse>(
            invoicing->finalize(start.value(), std::move(customers), who),
            invoices_response<FinalizeInvoicesResponse>);
      },
      [](std::vector<FinalizeInvoicesResponse> answers) {
        FinalizeInvoicesResponse merged;
        for (auto& answer : answers) {
          for (auto& invoice : *answer.mutable_invoices()) {
            *merged.add_invoices() = std::move(invoice);
          }
        }
        return merged;
      }});
}

}  // namespace

void add_invoice_service(connect_router& router, caf::actor_system& system,
                         actors::directory_actor directory,
                         std::shared_ptr<actors::invoicing> invoicing,
                         model::validation_limits limits,
                         std::shared_ptr<const security::authenticator> auth) {
  visit_invoice_methods(invoicing, limits, auth, [&](auto method) {
    add_route(router, system, directory, std::move(method));
  });
}

actors::call_executor invoice_call_executor(std::shared_ptr<actors::invoicing> invoicing,
                                            model::validation_limits limits) {
  invoice_executors runners;
  visit_invoice_methods(invoicing, limits, nullptr,
                        [&](const auto& method) { add_executor(runners, method); });
  return [executors = std::make_shared<const invoice_executors>(std::move(runners))](
             const actors::forwarded_call& call) -> result<std::string> {
    auto it = executors->find(call.method);
    if (it == executors->end()) {
      return status{status_code::unimplemented, "no such forwarded call: " + call.method};
    }
    return it->second(call);
  };
}

}  // namespace billing::gateway
