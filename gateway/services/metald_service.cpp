#include "gateway/services/metald_service.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "billing/v1/metald.pb.h"
#include "gateway/services/access.hpp"
#include "gateway/services/actor_bridge.hpp"
#include "gateway/services/convert.hpp"
#include "model/calendar.hpp"

namespace billing::gateway {
namespace {

// metald's service under each proto package its released versions call it by
// (same messages, same field numbers); one implementation serves them all.
constexpr std::string_view kMetaldPrefixes[] = {
    "/billing.v1.BillingService/",
    "/deploy.billaged.v1.BillingService/",
    "/billaged.v1.BillingService/",
};

status invalid(std::string message) {
  return {status_code::invalid_argument, std::move(message)};
}

// A unix-nanosecond instant metald may send: after 2000-01-01 and after the
// raw-retention cutoff (older raw windows are dropped anyway, and this bounds
// how many hourly windows one call can derive), and at most the clock skew in
// the future.
status check_instant(std::string_view field, int64_t ns, const metald_settings& settings) {
  const int64_t now = model::unix_now_ns();
  const int64_t latest = now + settings.limits.max_clock_skew_ns;
  const int64_t earliest =
      settings.limits.raw_retention_ns > 0
          ? std::max(model::kEarliestValidNs, now - settings.limits.raw_retention_ns)
          : model::kEarliestValidNs;
  if (ns == model::kNoTimestamp || ns < earliest || ns > latest) {
    if (ns == model::kNoTimestamp) return invalid(fmt::format("{} is missing", field));
    return invalid(fmt::format(
        "{} {} is out of range (after {} and the {}-day raw retention, at most {} s ahead of "
        "now, {})",
        field, model::format_rfc3339(ns), model::format_rfc3339(earliest),
        settings.limits.raw_retention_ns / model::kNanosPerDay,
        settings.limits.max_clock_skew_ns / model::kNanosPerSecond, model::format_rfc3339(now)));
  }
  return status::ok_status();
}

// metald's calls write usage: its bearer token needs the ingest scope for the
// region its VMs are filed under (--metald-region).
status authorize_metald(const call_context& context, const metald_settings& settings) {
  auto caller =
      authorize(settings.auth.get(), context, security::require_ingest({settings.region}));
  return caller.ok() ? status::ok_status() : caller.error();
}

// Binds `method` of metald's BillingService, under every package name in
// kMetaldPrefixes, behind the ingest-scope check, so no handler can forget it.
template <class Request, class Response, class Handler>
void add_authorized(connect_router& router, std::string_view method,
                    const metald_settings& settings, Handler handler) {
  for (std::string_view prefix : kMetaldPrefixes) {
    router.add_unary<Request, Response>(
        std::string{prefix} + std::string{method},
        [settings, handler](const call_context& context, Request request,
                            responder<Response> respond) {
          if (status denied = authorize_metald(context, settings); !denied.ok()) {
            respond(denied);
            return;
          }
          handler(context, std::move(request), std::move(respond));
        });
  }
}

// A lifecycle op about `vm_id` at `at_ns`; the customer is set by the caller.
model::metald_op lifecycle_op(model::metald_op_kind kind, const std::string& vm_id, int64_t at_ns) {
  model::metald_op op;
  op.kind = kind;
  op.vm_id = vm_id;
  op.at_ns = at_ns;
  return op;
}

// X-Tenant-ID is optional; when sent it must name the body's customer.
status check_tenant(const call_context& context, std::string_view customer_id) {
  const auto& tenant = context.header("x-tenant-id");
  if (tenant.empty() || customer_id.empty() || tenant == customer_id) return status::ok_status();
  return {status_code::permission_denied,
          fmt::format("X-Tenant-ID '{}' does not match customer_id '{}'", tenant, customer_id)};
}

result<model::metald_sample> to_sample(const v1::MetaldSample& wire, int index,
                                       const metald_settings& settings) {
  if (!wire.has_timestamp()) return invalid(fmt::format("metrics[{}].timestamp is missing", index));
  model::metald_sample sample;
  sample.timestamp_ns = to_unix_ns(wire.timestamp());
  if (status bad =
          check_instant(fmt::format("metrics[{}].timestamp", index), sample.timestamp_ns, settings);
      !bad.ok()) {
    return bad;
  }
  const std::pair<const char*, int64_t> counters[] = {
      {"cpu_time_nanos", wire.cpu_time_nanos()},
      {"memory_usage_bytes", wire.memory_usage_bytes()},
      {"disk_read_bytes", wire.disk_read_bytes()},
      {"disk_write_bytes", wire.disk_write_bytes()},
      {"network_rx_bytes", wire.network_rx_bytes()},
      {"network_tx_bytes", wire.network_tx_bytes()},
  };
  for (const auto& [name, value] : counters) {
    if (value < 0) return invalid(fmt::format("metrics[{}].{} is negative", index, name));
  }
  if (static_cast<uint64_t>(wire.memory_usage_bytes()) > settings.limits.max_memory_bytes) {
    return invalid(fmt::format("metrics[{}].memory_usage_bytes exceeds {}", index,
                               settings.limits.max_memory_bytes));
  }
  sample.cpu_time_nanos = static_cast<uint64_t>(wire.cpu_time_nanos());
  sample.memory_usage_bytes = static_cast<uint64_t>(wire.memory_usage_bytes());
  sample.disk_read_bytes = static_cast<uint64_t>(wire.disk_read_bytes());
  sample.disk_write_bytes = static_cast<uint64_t>(wire.disk_write_bytes());
  sample.network_rx_bytes = static_cast<uint64_t>(wire.network_rx_bytes());
  sample.network_tx_bytes = static_cast<uint64_t>(wire.network_tx_bytes());
  return sample;
}

result<model::metald_op> to_samples_op(const call_context& context,
                                       const v1::MetaldSendMetricsBatchRequest& request,
                                       const metald_settings& settings) {
  if (status bad =
          first_error({model::check_id("vm_id", request.vm_id(), settings.limits),
                       model::check_id("customer_id", request.customer_id(), settings.limits),
                       check_tenant(context, request.customer_id())});
      !bad.ok()) {
    return bad;
  }
  if (request.metrics_size() == 0) return invalid("the batch has no metrics");
  if (static_cast<uint64_t>(request.metrics_size()) > settings.max_samples) {
    return status{status_code::resource_exhausted,
                  fmt::format("the batch has {} samples; at most {} are accepted per batch",
                              request.metrics_size(), settings.max_samples)};
  }
  model::metald_op op;
  op.kind = model::metald_op_kind::samples;
  op.customer_id = request.customer_id();
  op.region = settings.region;
  op.vm_id = request.vm_id();
  op.gap_after_ns = settings.gap_after_ns;
  op.samples.reserve(request.metrics_size());
  for (int i = 0; i < request.metrics_size(); ++i) {
    auto sample = to_sample(request.metrics(i), i, settings);
    if (!sample.ok()) return sample.error();
    op.samples.push_back(sample.value());
  }
  return op;
}

// Applies `op` in its customer's ledger; `done` gets the outcome once durable.
void apply(caf::actor_system& system, const actors::directory_actor& directory,
           const call_context& context, model::metald_op op,
           std::function<void(result<uint32_t>)> done) {
  auto hop = start_actor_hop(context, "metald");
  hop.set("billing.metald.samples", static_cast<int64_t>(op.samples.size()));
  op.trace = hop.context();
  ask<uint32_t>(
      system, directory, time_left(context),
      [done = std::move(done), hop = std::move(hop)](result<uint32_t> applied) mutable {
        finish_actor_hop(hop, applied);
        done(std::move(applied));
      },
      actors::metald_atom::value, std::move(op));
}

v1::MetaldSuccessResponse success() {
  v1::MetaldSuccessResponse response;
  response.set_success(true);
  return response;
}

// Answers a lifecycle call: success only once the op is durable.
std::function<void(result<uint32_t>)> answer_success(responder<v1::MetaldSuccessResponse> respond) {
  return [respond](result<uint32_t> applied) {
    if (!applied.ok()) {
      respond(applied.error());
      return;
    }
    respond(success());
  };
}

// Applies `op` (which names no customer) to a VM we know: the vm index,
// written with the VM's state and durable before any earlier call was
// acknowledged, has its customer; the directory looks it up (in a cluster,
// on every node). An unknown VM is not_found. `on_applied(customer)` runs
// once the op is durable, before the answer.
void apply_to_known_vm(caf::actor_system& system, const actors::directory_actor& directory,
                       const call_context& context, const metald_settings& settings,
                       model::metald_op op, responder<v1::MetaldSuccessResponse> respond,
                       std::function<void(const std::string&)> on_applied = {}) {
  std::string vm_id = op.vm_id;
  ask<std::string>(
      system, directory, time_left(context),
      [&system, directory, context, settings, op = std::move(op), respond = std::move(respond),
       on_applied = std::move(on_applied)](result<std::string> customer) mutable {
        if (!customer.ok()) {
          respond(customer.error());
          return;
        }
        if (customer.value().empty()) {
          respond(status{status_code::not_found,
                         fmt::format("vm '{}' is unknown: no NotifyVmStarted or samples were "
                                     "received for it",
                                     op.vm_id)});
          return;
        }
        if (status bad = check_tenant(context, customer.value()); !bad.ok()) {
          respond(bad);
          return;
        }
        op.customer_id = std::move(customer).value();
        op.region = settings.region;
        auto answer = answer_success(std::move(respond));
        if (on_applied) {
          answer = [answer = std::move(answer), on_applied = std::move(on_applied),
                    customer_id = op.customer_id](result<uint32_t> applied) {
            if (applied.ok()) on_applied(customer_id);
            answer(std::move(applied));
          };
        }
        apply(system, directory, context, std::move(op), std::move(answer));
      },
      actors::locate_atom::value, std::move(vm_id));
}

}  // namespace

void add_metald_service(connect_router& router, caf::actor_system& system,
                        actors::directory_actor directory, actors::instances_actor instances,
                        metald_settings settings) {
  add_authorized<v1::MetaldSendMetricsBatchRequest, v1::MetaldSendMetricsBatchResponse>(
      router, "SendMetricsBatch", settings,
      [&system, directory, settings](const call_context& context,
                                     v1::MetaldSendMetricsBatchRequest request,
                                     responder<v1::MetaldSendMetricsBatchResponse> respond) {
        auto op = to_samples_op(context, request, settings);
        if (!op.ok()) {
          respond(op.error());
          return;
        }
        const auto sample_count = op->samples.size();
        apply(system, directory, context, std::move(op.value()),
              [respond, sample_count](result<uint32_t> added) {
                if (!added.ok()) {
                  respond(added.error());
                  return;
                }
                v1::MetaldSendMetricsBatchResponse response;
                response.set_success(true);
                response.set_message(fmt::format("stored {} new samples of {} ({} already seen)",
                                                 added.value(), sample_count,
                                                 sample_count - added.value()));
                respond(std::move(response));
              });
      });

  add_authorized<v1::MetaldNotifyVmStartedRequest, v1::MetaldSuccessResponse>(
      router, "NotifyVmStarted", settings,
      [&system, directory, settings](const call_context& context,
                                     v1::MetaldNotifyVmStartedRequest request,
                                     responder<v1::MetaldSuccessResponse> respond) {
        if (status bad =
                first_error({model::check_id("vm_id", request.vm_id(), settings.limits),
                             model::check_id("customer_id", request.customer_id(), settings.limits),
                             check_tenant(context, request.customer_id()),
                             check_instant("start_time", request.start_time(), settings)});
            !bad.ok()) {
          respond(bad);
          return;
        }
        auto op = lifecycle_op(model::metald_op_kind::start, request.vm_id(), request.start_time());
        op.customer_id = request.customer_id();
        op.region = settings.region;
        apply(system, directory, context, std::move(op), answer_success(respond));
      });

  add_authorized<v1::MetaldNotifyVmStoppedRequest, v1::MetaldSuccessResponse>(
      router, "NotifyVmStopped", settings,
      [&system, directory, instances, settings](const call_context& context,
                                                v1::MetaldNotifyVmStoppedRequest request,
                                                responder<v1::MetaldSuccessResponse> respond) {
        if (status bad = first_error({model::check_id("vm_id", request.vm_id(), settings.limits),
                                      check_instant("stop_time", request.stop_time(), settings)});
            !bad.ok()) {
          respond(bad);
          return;
        }
        // A stop after the last sample is held for the VM's final batch; the
        // instances actor finishes it after the grace.
        apply_to_known_vm(
            system, directory, context, settings,
            lifecycle_op(model::metald_op_kind::stop, request.vm_id(), request.stop_time()),
            std::move(respond), [instances, vm_id = request.vm_id()](const std::string& customer) {
              caf::anon_send(instances, actors::held_stop_atom::value, customer, vm_id);
            });
      });

  add_authorized<v1::MetaldNotifyPossibleGapRequest, v1::MetaldSuccessResponse>(
      router, "NotifyPossibleGap", settings,
      [&system, directory, settings](const call_context& context,
                                     v1::MetaldNotifyPossibleGapRequest request,
                                     responder<v1::MetaldSuccessResponse> respond) {
        const status ordered = request.resume_time() > request.last_sent()
                                   ? status::ok_status()
                                   : invalid("resume_time must be after last_sent");
        if (status bad = first_error({model::check_id("vm_id", request.vm_id(), settings.limits),
                                      check_instant("last_sent", request.last_sent(), settings),
                                      check_instant("resume_time", request.resume_time(), settings),
                                      ordered});
            !bad.ok()) {
          respond(bad);
          return;
        }
        auto op = lifecycle_op(model::metald_op_kind::gap, request.vm_id(), request.last_sent());
        op.until_ns = request.resume_time();
        apply_to_known_vm(system, directory, context, settings, std::move(op), std::move(respond));
      });

  add_authorized<v1::MetaldSendHeartbeatRequest, v1::MetaldSuccessResponse>(
      router, "SendHeartbeat", settings,
      [&system, instances, settings](const call_context& context,
                                     v1::MetaldSendHeartbeatRequest request,
                                     responder<v1::MetaldSuccessResponse> respond) {
        if (status bad = model::check_id("instance_id", request.instance_id(), settings.limits);
            !bad.ok()) {
          respond(bad);
          return;
        }
        std::vector<std::string> active_vms;
        for (const auto& vm : request.active_vms()) {
          if (status bad = model::check_id("active_vms[]", vm, settings.limits); !bad.ok()) {
            respond(bad);
            return;
          }
          active_vms.push_back(vm);
        }
        ask<bool>(
            system, instances, time_left(context),
            [respond](result<bool> stored) {
              if (!stored.ok()) {
                respond(stored.error());
                return;
              }
              respond(success());
            },
            actors::heartbeat_atom::value, request.instance_id(), std::move(active_vms));
      });

  add_authorized<v1::MetaldGetActiveBillingSessionsRequest,
                 v1::MetaldGetActiveBillingSessionsResponse>(
      router, "GetActiveBillingSessions", settings,
      [&system, instances, settings](
          const call_context& context, v1::MetaldGetActiveBillingSessionsRequest request,
          responder<v1::MetaldGetActiveBillingSessionsResponse> respond) {
        if (status bad = model::check_id("instance_id", request.instance_id(), settings.limits);
            !bad.ok()) {
          respond(bad);
          return;
        }
        ask<std::vector<model::metald_session>>(
            system, instances, time_left(context),
            [respond](result<std::vector<model::metald_session>> sessions) {
              if (!sessions.ok()) {
                respond(sessions.error());
                return;
              }
              v1::MetaldGetActiveBillingSessionsResponse response;
              for (const auto& session : sessions.value()) {
                auto* out = response.add_sessions();
                out->set_vm_id(session.vm_id);
                out->set_customer_id(session.customer_id);
                if (session.start_ns != model::kNoTimestamp) out->set_start_time(session.start_ns);
                if (session.last_sample_ns != model::kNoTimestamp) {
                  out->set_last_sample_time(session.last_sample_ns);
                }
              }
              respond(std::move(response));
            },
            actors::sessions_atom::value, request.instance_id());
      });
}

}  // namespace billing::gateway
