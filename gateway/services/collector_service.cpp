#include "gateway/services/collector_service.hpp"

#include <fmt/format.h>

#include <chrono>
#include <memory>

#include "actors/errors.hpp"
#include "gateway/services/actor_bridge.hpp"
#include "gateway/services/convert.hpp"
#include "model/calendar.hpp"

namespace billing::gateway {
namespace {

constexpr std::string_view kCollectorPrefix = "/billing.v1.BillingCollectorService/";

// Hands `batch` to the directory and records the outcome in the metrics.
void ingest(caf::actor_system& system, const actors::directory_actor& directory,
            const collector_settings& settings, model::ingest_batch batch, caf::duration timeout,
            std::function<void(result<model::ingest_report>)> done) {
  ask<model::ingest_report>(
      system, directory, timeout,
      [done = std::move(done), metrics = settings.metrics](result<model::ingest_report> report) {
        if (report.ok() && metrics) metrics->record_ingest(report.value());
        done(std::move(report));
      },
      actors::ingest_atom::value, std::move(batch));
}

// Request-level checks of a batch's envelope; items are judged by the actors.
status check_batch_envelope(const v1::SendMetricsBatchRequest& request,
                            const collector_settings& settings) {
  if (auto bad = model::validate_id("batch_id", request.batch_id(), settings.limits)) {
    return {status_code::invalid_argument, bad->message};
  }
  if (!request.instance_id().empty()) {
    if (auto bad = model::validate_id("instance_id", request.instance_id(), settings.limits)) {
      return {status_code::invalid_argument, bad->message};
    }
  }
  if (!request.region().empty()) {
    if (auto bad = model::validate_id("region", request.region(), settings.limits)) {
      return {status_code::invalid_argument, bad->message};
    }
  }
  if (request.metrics_size() == 0) {
    return {status_code::invalid_argument, "the batch has no metrics"};
  }
  if (static_cast<uint64_t>(request.metrics_size()) > settings.max_batch_items) {
    return {status_code::resource_exhausted,
            fmt::format("the batch has {} metrics; at most {} are accepted per batch: split it",
                        request.metrics_size(), settings.max_batch_items)};
  }
  return status::ok_status();
}

}  // namespace

void add_collector_service(connect_router& router, caf::actor_system& system,
                           actors::directory_actor directory, collector_settings settings) {
  router.add_unary<v1::SendMetricsBatchRequest, v1::SendMetricsBatchResponse>(
      std::string{kCollectorPrefix} + "SendMetricsBatch",
      [&system, directory, settings](const call_context& context,
                                     v1::SendMetricsBatchRequest request,
                                     responder<v1::SendMetricsBatchResponse> respond) {
        if (status bad = check_batch_envelope(request, settings); !bad.ok()) {
          respond(bad);
          return;
        }
        model::ingest_batch batch;
        batch.meta = {request.batch_id(), request.instance_id(), request.region(),
                      model::unix_now_ns()};
        batch.windows.reserve(request.metrics_size());
        for (const auto& metrics : request.metrics()) batch.windows.push_back(to_window(metrics));
        ingest(system, directory, settings, std::move(batch), time_left(context),
               [respond](result<model::ingest_report> report) {
                 if (!report.ok()) {
                   respond(report.error());
                   return;
                 }
                 respond(to_batch_response(report.value()));
               });
      });

  router.add_unary<v1::SendMetricsRequest, v1::SendMetricsResponse>(
      std::string{kCollectorPrefix} + "SendMetrics",
      [&system, directory, settings](const call_context& context, v1::SendMetricsRequest request,
                                     responder<v1::SendMetricsResponse> respond) {
        if (!request.has_metrics()) {
          respond(status{status_code::invalid_argument, "metrics is required"});
          return;
        }
        if (!request.instance_id().empty()) {
          if (auto bad =
                  model::validate_id("instance_id", request.instance_id(), settings.limits)) {
            respond(status{status_code::invalid_argument, bad->message});
            return;
          }
        }
        model::ingest_batch batch;
        const int64_t now = model::unix_now_ns();
        batch.meta = {fmt::format("single:{}", now), request.instance_id(),
                      request.metrics().region(), now};
        batch.windows.push_back(to_window(request.metrics()));
        ingest(system, directory, settings, std::move(batch), time_left(context),
               [respond](result<model::ingest_report> report) {
                 if (!report.ok()) {
                   respond(report.error());
                   return;
                 }
                 const auto& outcome = report->outcomes.at(0);
                 if (outcome.status == model::item_status::rejected) {
                   const auto code = outcome.reason == model::reject_reason::conflicting_duplicate
                                         ? status_code::already_exists
                                         : status_code::invalid_argument;
                   respond(status{code, outcome.message});
                   return;
                 }
                 v1::SendMetricsResponse response;
                 response.set_status(static_cast<v1::ItemStatus>(outcome.status));
                 respond(std::move(response));
               });
      });
}

}  // namespace billing::gateway
