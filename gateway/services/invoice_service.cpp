#include "gateway/services/invoice_service.hpp"

#include <caf/all.hpp>

#include "billing/v1/invoice.pb.h"
#include "gateway/services/convert.hpp"
#include "gateway/services/invoice_convert.hpp"

namespace billing::gateway {
namespace {

constexpr std::string_view kInvoicePrefix = "/billing.v1.BillingInvoiceService/";

// Who the audit trail names until authentication supplies the caller.
const std::string kUnauthenticated = "unauthenticated";

// An empty id is the default plan where `allow_default`; otherwise ids are
// checked like on ingest.
status check_customer(const std::string& customer_id, const model::validation_limits& limits,
                      bool allow_default) {
  if (customer_id.empty() && allow_default) return status::ok_status();
  if (auto bad = model::validate_id("customer_id", customer_id, limits)) {
    return {status_code::invalid_argument, bad->message};
  }
  return status::ok_status();
}

result<int64_t> period_start(bool present, const google::protobuf::Timestamp& ts) {
  if (!present) return status{status_code::invalid_argument, "period_start is required"};
  const int64_t start = to_unix_ns(ts);
  if (auto period = model::monthly_period(start); !period.ok()) return period.error();
  return start;
}

// Runs `work` (blocking on RocksDB) on a detached actor and answers with
// `to_response` of its result.
template <class Response, class Work, class ToResponse>
void run_detached(caf::actor_system& system, responder<Response> respond, Work work,
                  ToResponse to_response) {
  system.spawn<caf::detached>(
      [respond = std::move(respond), work = std::move(work), to_response = std::move(to_response)] {
        auto answer = work();
        if (!answer.ok()) {
          respond(answer.error());
          return;
        }
        respond(to_response(answer.value()));
      });
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

}  // namespace

void add_invoice_service(connect_router& router, caf::actor_system& system,
                         std::shared_ptr<actors::invoicing> invoicing,
                         model::validation_limits limits) {
  router.add_unary<v1::SetCustomerPlanRequest, v1::SetCustomerPlanResponse>(
      std::string{kInvoicePrefix} + "SetCustomerPlan",
      [&system, invoicing, limits](const call_context&, v1::SetCustomerPlanRequest request,
                                   responder<v1::SetCustomerPlanResponse> respond) {
        // authorize(context, admin scope) goes here.
        if (status bad = check_customer(request.customer_id(), limits, true); !bad.ok()) {
          respond(bad);
          return;
        }
        auto version = to_plan_version(request.version());
        if (!version.ok()) {
          respond(version.error());
          return;
        }
        run_detached(
            system, std::move(respond),
            [invoicing, customer = request.customer_id(), version = std::move(version).value()] {
              return invoicing->set_plan(customer, version, kUnauthenticated);
            },
            plan_response<v1::SetCustomerPlanResponse>);
      });

  router.add_unary<v1::GetCustomerPlanRequest, v1::GetCustomerPlanResponse>(
      std::string{kInvoicePrefix} + "GetCustomerPlan",
      [&system, invoicing, limits](const call_context&, v1::GetCustomerPlanRequest request,
                                   responder<v1::GetCustomerPlanResponse> respond) {
        // authorize(context, admin or customer:<id> scope) goes here.
        if (status bad = check_customer(request.customer_id(), limits, true); !bad.ok()) {
          respond(bad);
          return;
        }
        run_detached(
            system, std::move(respond),
            [invoicing, customer = request.customer_id()] { return invoicing->plan(customer); },
            plan_response<v1::GetCustomerPlanResponse>);
      });

  router.add_unary<v1::GetInvoiceRequest, v1::GetInvoiceResponse>(
      std::string{kInvoicePrefix} + "GetInvoice",
      [&system, invoicing, limits](const call_context&, v1::GetInvoiceRequest request,
                                   responder<v1::GetInvoiceResponse> respond) {
        // authorize(context, admin or customer:<id> scope) goes here.
        if (status bad = check_customer(request.customer_id(), limits, false); !bad.ok()) {
          respond(bad);
          return;
        }
        auto start = period_start(request.has_period_start(), request.period_start());
        if (!start.ok()) {
          respond(start.error());
          return;
        }
        run_detached(
            system, std::move(respond),
            [invoicing, customer = request.customer_id(), start = start.value()] {
              return invoicing->get_invoice(customer, start, kUnauthenticated);
            },
            [](const model::invoice& bill) {
              v1::GetInvoiceResponse response;
              *response.mutable_invoice() = to_proto(bill);
              return response;
            });
      });

  router.add_unary<v1::ListInvoicesRequest, v1::ListInvoicesResponse>(
      std::string{kInvoicePrefix} + "ListInvoices",
      [&system, invoicing, limits](const call_context&, v1::ListInvoicesRequest request,
                                   responder<v1::ListInvoicesResponse> respond) {
        // authorize(context, admin or customer:<id> scope) goes here.
        if (status bad = check_customer(request.customer_id(), limits, false); !bad.ok()) {
          respond(bad);
          return;
        }
        run_detached(
            system, std::move(respond),
            [invoicing, customer = request.customer_id()] {
              return invoicing->list_invoices(customer);
            },
            invoices_response<v1::ListInvoicesResponse>);
      });

  router.add_unary<v1::FinalizeInvoicesRequest, v1::FinalizeInvoicesResponse>(
      std::string{kInvoicePrefix} + "FinalizeInvoices",
      [&system, invoicing, limits](const call_context&, v1::FinalizeInvoicesRequest request,
                                   responder<v1::FinalizeInvoicesResponse> respond) {
        // authorize(context, admin scope) goes here.
        std::vector<std::string> customers;
        for (const auto& customer : request.customer_ids()) {
          if (status bad = check_customer(customer, limits, false); !bad.ok()) {
            respond(bad);
            return;
          }
          customers.push_back(customer);
        }
        auto start = period_start(request.has_period_start(), request.period_start());
        if (!start.ok()) {
          respond(start.error());
          return;
        }
        run_detached(
            system, std::move(respond),
            [invoicing, customers = std::move(customers), start = start.value()] {
              return invoicing->finalize(start, customers, kUnauthenticated);
            },
            invoices_response<v1::FinalizeInvoicesResponse>);
      });
}

}  // namespace billing::gateway
