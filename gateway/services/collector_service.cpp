#include "gateway/services/collector_service.hpp"

#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <set>

#include "actors/errors.hpp"
#include "gateway/services/access.hpp"
#include "gateway/services/actor_bridge.hpp"
#include "gateway/services/convert.hpp"
#include "model/calendar.hpp"

namespace billing::gateway {
namespace {

constexpr std::string_view kCollectorPrefix = "/billing.v1.BillingCollectorService/";

// Hands `batch` to the directory (a traced actor hop) and records the
// outcome in the metrics. `ticket` is the call's place among the in-flight
// batches; it is returned when the answer (or the timeout) arrives.
void ingest(caf::actor_system& system, const actors::directory_actor& directory,
            const collector_settings& settings, const call_context& context,
            model::ingest_batch batch, std::shared_ptr<security::inflight_gate::ticket> ticket,
            std::function<void(result<model::ingest_report>)> done) {
  auto hop = start_actor_hop(context, "ingest");
  hop.set("billing.batch.windows", static_cast<int64_t>(batch.windows.size()));
  batch.meta.trace = hop.context();
  ask<model::ingest_report>(
      system, directory, time_left(context),
      [done = std::move(done), metrics = settings.metrics, ticket = std::move(ticket),
       hop = std::move(hop)](result<model::ingest_report> report) mutable {
        finish_actor_hop(hop, report);
        if (report.ok() && metrics) metrics->record_ingest(report.value());
        // Returned before the answer is written, not when this callback is
        // destroyed (later, on another thread): a client that sends its next
        // batch as soon as it has the answer must find the slot free.
        ticket.reset();
        done(std::move(report));
      },
      actors::ingest_atom::value, std::move(batch));
}

// The peer's address without its port: without auth, rate limits are per host.
std::string host_of(const std::string& peer) {
  const auto colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

// Admits an authorized ingest call: within its source's rate and the bound on
// batches in flight. Otherwise resource_exhausted with a retry hint, before
// anything is decoded into a batch or queued to an actor.
result<std::shared_ptr<security::inflight_gate::ticket>> admit(const collector_settings& settings,
                                                               const security::principal& caller,
                                                               const call_context& context) {
  if (settings.rate_limit) {
    const std::string source = caller.unrestricted ? host_of(context.peer) : caller.name;
    if (auto wait = settings.rate_limit->admit(source, std::chrono::steady_clock::now())) {
      const auto seconds = static_cast<uint32_t>((wait->count() + 999) / 1000);
      return status{status_code::resource_exhausted,
                    fmt::format("rate limit of source '{}' exceeded; retry after {} ms", source,
                                wait->count())}
          .with_retry_after(seconds);
    }
  }
  if (!settings.inflight) return std::shared_ptr<security::inflight_gate::ticket>{};
  auto ticket = settings.inflight->try_enter();
  if (!ticket) {
    return status{status_code::resource_exhausted,
                  "too many batches are being stored right now; retry after 1 s"}
        .with_retry_after(1);
  }
  return ticket;
}

// Every region a batch writes: a metric's own, or the batch's when it has none.
std::vector<std::string> regions_of(const v1::SendMetricsBatchRequest& request) {
  std::set<std::string> regions;
  for (const auto& metrics : request.metrics()) {
    regions.insert(metrics.region().empty() ? request.region() : metrics.region());
  }
  return {regions.begin(), regions.end()};
}

// An admitted ingest call: who it is (for the audit trail) and its place
// among the batches in flight.
struct admitted_call {
  std::string caller;
  std::shared_ptr<security::inflight_gate::ticket> ticket;
};

// Authorizes (ingest scope for `regions`) and admits the call; answers it
// and returns nullopt when it may not proceed.
std::optional<admitted_call> authorize_and_admit(const collector_settings& settings,
                                                 const call_context& context,
                                                 std::vector<std::string> regions,
                                                 const std::function<void(status)>& refuse) {
  auto caller =
      authorize(settings.auth.get(), context, security::require_ingest(std::move(regions)));
  if (!caller.ok()) {
    refuse(caller.error());
    return std::nullopt;
  }
  auto ticket = admit(settings, caller.value(), context);
  if (!ticket.ok()) {
    refuse(ticket.error());
    return std::nullopt;
  }
  return admitted_call{caller.value().name, std::move(ticket).value()};
}

// Request-level checks of a batch's envelope; items are judged by the actors.
status check_batch_envelope(const v1::SendMetricsBatchRequest& request,
                            const collector_settings& settings) {
  if (status bad = model::check_id("batch_id", request.batch_id(), settings.limits); !bad.ok()) {
    return bad;
  }
  if (!request.instance_id().empty()) {
    if (status bad = model::check_id("instance_id", request.instance_id(), settings.limits);
        !bad.ok()) {
      return bad;
    }
  }
  if (!request.region().empty()) {
    if (status bad = model::check_id("region", request.region(), settings.limits); !bad.ok()) {
      return bad;
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
        auto admitted = authorize_and_admit(settings, context, regions_of(request),
                                            [&respond](status refused) { respond(refused); });
        if (!admitted) return;
        if (status bad = check_batch_envelope(request, settings); !bad.ok()) {
          respond(bad);
          return;
        }
        model::ingest_batch batch;
        batch.meta = {request.batch_id(), request.instance_id(), request.region(),
                      model::unix_now_ns(), admitted->caller};
        batch.windows.reserve(request.metrics_size());
        for (const auto& metrics : request.metrics()) batch.windows.push_back(to_window(metrics));
        ingest(system, directory, settings, context, std::move(batch), std::move(admitted->ticket),
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
        auto admitted = authorize_and_admit(settings, context, {request.metrics().region()},
                                            [&respond](status refused) { respond(refused); });
        if (!admitted) return;
        if (!request.has_metrics()) {
          respond(status{status_code::invalid_argument, "metrics is required"});
          return;
        }
        if (!request.instance_id().empty()) {
          if (status bad = model::check_id("instance_id", request.instance_id(), settings.limits);
              !bad.ok()) {
            respond(bad);
            return;
          }
        }
        model::ingest_batch batch;
        const int64_t now = model::unix_now_ns();
        batch.meta = {fmt::format("single:{}", now), request.instance_id(),
                      request.metrics().region(), now, admitted->caller};
        batch.windows.push_back(to_window(request.metrics()));
        ingest(system, directory, settings, context, std::move(batch), std::move(admitted->ticket),
               [respond](result<model::ingest_report> report) {
                 if (!report.ok()) {
                   respond(report.error());
                   return;
                 }
                 const auto& outcome = report->outcomes.at(0);
                 if (outcome.status == model::item_status::rejected) {
                   auto code = status_code::invalid_argument;
                   if (outcome.reason == model::reject_reason::conflicting_duplicate) {
                     code = status_code::already_exists;
                   } else if (outcome.reason == model::reject_reason::total_out_of_range) {
                     code = status_code::out_of_range;
                   }
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
