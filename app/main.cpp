// billingd: the billing-service node. Opens the ledger, starts the actors and
// the Connect gateway, and on SIGTERM/SIGINT drains in-flight calls before
// closing RocksDB cleanly.
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/manager.hpp>

#include <csignal>
#include <filesystem>
#include <iostream>

#include "actors/directory.hpp"
#include "app/config.hpp"
#include "app/maintenance_commands.hpp"
#include "app/replication_setup.hpp"
#include "cluster/etcd/coordinator.hpp"
#include "cluster/etcd/counter.hpp"
#include "cluster/handover.hpp"
#include "cluster/node_router.hpp"
#include "gateway/services/admin_service.hpp"
#include "gateway/services/collector_service.hpp"
#include "gateway/services/invoice_service.hpp"
#include "gateway/services/live_usage_stream.hpp"
#include "gateway/services/metald_service.hpp"
#include "gateway/services/query_service.hpp"
#include "gateway/static_files.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"
#include "observability/otlp/otlp_exporter.hpp"
#include "observability/trace.hpp"

namespace billing::app {
namespace {

using observability::log_error;
using observability::log_info;
using observability::log_warn;

// The dashboard's built files at /ui/ (README "Live dashboard"). A missing
// build is not fatal: the API works without it, /ui/ says what is missing.
void add_dashboard(gateway::connect_router& router, const std::string& configured) {
  std::filesystem::path dir = configured;
  if (dir.empty()) {
    std::error_code error;
    dir = std::filesystem::read_symlink("/proc/self/exe", error).parent_path() / "ui";
  }
  auto files = gateway::static_files::load(dir);
  if (files.ok()) {
    log_info("dashboard: {} files from {} at /ui/", files.value().size(), dir.string());
  } else {
    log_warn("dashboard not served: {}", files.error().message());
  }
  gateway::add_static_files(router, "/ui/", std::move(files));
}

// Blocks the stop signals in every thread (threads inherit the mask, so this
// runs before any is started) and returns the set to wait on.
sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int wait_for_stop_signal(const sigset_t& signals) {
  int received = 0;
  while (sigwait(&signals, &received) != 0) {
  }
  return received;
}

bool names_config_file(const std::vector<std::string>& args) {
  for (const auto& arg : args) {
    if (arg.starts_with("--config-file")) return true;
  }
  return false;
}

struct started_directory {
  actors::directory_actor directory;
  caf::actor handover;  // in a cluster: moves customers this node no longer owns
  caf::actor fence;     // etcd mode: the epoch fence peers talk to
};

// The directory the gateway talks to: the node's own, or in a cluster the
// node router (which owns the local directory and publishes it to peers).
result<started_directory> start_directory(caf::actor_system& system, const billingd_config& config,
                                          const std::optional<cluster::membership>& members,
                                          const cluster::local_directory_factory& make_local,
                                          const std::shared_ptr<storage::ledger_store>& store,
                                          const std::shared_ptr<cluster::cluster_gauges>& gauges,
                                          const std::shared_ptr<cluster::etcd::etcd_gauges>& etcd) {
  if (!members) return started_directory{make_local({}), {}, {}};
  auto settings = config.router_settings();
  if (config.etcd_mode()) {
    settings.fenced = true;
    settings.fence_refused = std::shared_ptr<std::atomic<uint64_t>>(etcd, &etcd->fence_refused);
  }
  auto node = cluster::spawn_cluster_node(system, *members, settings, make_local, store, gauges);
  if (!node.ok()) return node.error();
  const std::string bind =
      config.cluster_bind_address.empty() ? members->self().host : config.cluster_bind_address;
  auto port = cluster::publish_local_directory(system, node.value(), *members, settings,
                                               bind == "0.0.0.0" ? "" : bind);
  if (!port.ok()) {
    caf::anon_send_exit(node->router, caf::exit_reason::user_shutdown);
    return port.error();
  }
  log_info("cluster node {} of {} members; peers reach it on {}:{}{}", members->self().node_id,
           members->members().size(), bind, port.value(), settings.tls ? " (TLS)" : "");
  // Replicated: every replica of a shard holds its customers; nothing moves
  // by hand-over (a replica that joins gets a snapshot).
  if (config.replicated()) {
    return started_directory{node->router, {}, caf::actor_cast<caf::actor>(node->fence)};
  }
  cluster::handover_settings handover_settings;
  // etcd mode: members change while the node runs, so the passes go on.
  handover_settings.keep_running = config.etcd_mode();
  auto handover =
      cluster::spawn_handover(system, *members, node->router, store, gauges, handover_settings);
  return started_directory{node->router, std::move(handover),
                           caf::actor_cast<caf::actor>(node->fence)};
}

// --etcd-leave-on-stop: deregisters (the others take this node's customers
// at once) and hands every customer over before the node stops.
void leave_cluster(caf::actor_system& system, const billingd_config& config,
                   cluster::etcd::coordinator& coordinator, const caf::actor& handover) {
  if (!coordinator.leave()) {
    log_warn("cluster: no other member known; this node's customers stay here");
    return;
  }
  const auto timeout =
      std::chrono::milliseconds{std::max<uint32_t>(config.drain_timeout_ms, 30'000)};
  if (cluster::drain_now(system, handover, timeout)) {
    log_info("cluster: every customer handed over; stopping");
  } else {
    log_warn("cluster: some customers could not be handed over within {} ms; they stay here",
             timeout.count());
  }
}

// OpenTelemetry traces (README "Traces"): the span queue everything records
// into and the exporter draining it; both null without --otlp-endpoint.
struct trace_export {
  std::shared_ptr<observability::tracer> spans;
  std::unique_ptr<observability::otlp::otlp_exporter> exporter;
};

// service.instance.id: the cluster node id, else a random UUID (version 4
// layout) for this run, as the semantic conventions suggest.
std::string instance_id(const billingd_config& config) {
  if (!config.node_id.empty()) return config.node_id;
  std::string hex = observability::new_trace_id();
  hex[12] = '4';
  hex[16] = "89ab"[hex[16] % 4];
  return fmt::format("{}-{}-{}-{}-{}", hex.substr(0, 8), hex.substr(8, 4), hex.substr(12, 4),
                     hex.substr(16, 4), hex.substr(20));
}

result<trace_export> start_tracing(const billingd_config& config,
                                   const std::shared_ptr<observability::service_metrics>& metrics) {
  if (config.otlp_endpoint.empty()) return trace_export{};
  if (config.otlp_max_queue_spans == 0 || config.otlp_timeout_ms == 0) {
    return status{status_code::invalid_argument,
                  "--otlp-max-queue-spans and --otlp-timeout-ms must be positive"};
  }
  metrics->record_trace_spans(true, 0);
  metrics->record_trace_spans(false, 0);
  auto spans = std::make_shared<observability::tracer>(
      config.otlp_max_queue_spans, [metrics](observability::span_outcome outcome, uint64_t n) {
        metrics->record_trace_spans(outcome == observability::span_outcome::exported, n);
      });
  auto exporter = observability::otlp::otlp_exporter::start(
      {config.otlp_endpoint, std::chrono::milliseconds{config.otlp_timeout_ms}}, spans,
      observability::otlp::billingd_resource(BILLING_VERSION, instance_id(config)));
  if (!exporter.ok()) return exporter.error();
  log_info("tracing: spans go to {}/v1/traces (OTLP/HTTP protobuf), at most {} queued",
           config.otlp_endpoint, config.otlp_max_queue_spans);
  return trace_export{std::move(spans), std::move(exporter).value()};
}

int run_server(billingd_config& config, const sigset_t& stop_signals) {
  auto server_options = config.server_options();
  if (!server_options.ok()) {
    log_error("{}", server_options.error().message());
    return 2;
  }
  auto authenticator = config.authenticator();
  if (!authenticator.ok()) {
    log_error("{}", authenticator.error().message());
    return 2;
  }
  auto auth = std::make_shared<const security::authenticator>(std::move(authenticator).value());
  if (auth->insecure()) {
    log_warn(
        "INSECURE: --insecure-no-auth is set: every caller may ingest, read every customer and "
        "run admin calls without credentials. For local development only; never expose this "
        "port.");
  }
  auto members = config.membership();
  if (!members.ok()) {
    log_error("{}", members.error().message());
    return 2;
  }
  if (members.value()) {
    if (status tls = config.apply_cluster_tls(); !tls.ok()) {
      log_error("{}", tls.message());
      return 2;
    }
    if (config.router_settings().tls) config.load<caf::openssl::manager>();
  }
  std::shared_ptr<cluster::etcd::etcd_client> etcd;
  if (config.etcd_mode()) {
    auto settings = config.etcd_settings();
    auto made = settings.ok() ? cluster::etcd::etcd_client::make(settings.value())
                              : decltype(cluster::etcd::etcd_client::make({})){settings.error()};
    if (!made.ok()) {
      log_error("{}", made.error().message());
      return 2;
    }
    etcd = std::move(made).value();
  }
  // Shared by everything that records into it; outlives the server and store.
  auto metrics = std::make_shared<observability::service_metrics>();
  auto tracing = start_tracing(config, metrics);
  if (!tracing.ok()) {
    log_error("{}", tracing.error().message());
    return 2;
  }
  auto configured_store = config.store_options();
  if (!configured_store.ok()) {
    log_error("{}", configured_store.error().message());
    return 2;
  }
  auto store_options = std::move(configured_store).value();
  store_options.tracer = tracing->spans;
  server_options->tracer = tracing->spans;
  store_options.on_synced_write = [metrics](std::chrono::nanoseconds took) {
    metrics->record_synced_write(took);
  };
  const bool store_was_empty = !storage::ledger_store::exists(store_options.data_dir);
  auto store = storage::ledger_store::open(store_options);
  if (!store.ok()) {
    log_error("cannot open the ledger in {}: {}", config.data_dir, store.error().message());
    return 1;
  }
  int exit_code = 0;
  auto actor_gauges = std::make_shared<actors::actor_gauges>();
  {
    caf::actor_system system{config};
    actors::invoicing_settings invoicing_settings{config.query_settings().max_window_ns, {}, {}};
    if (etcd) {
      // Cluster-wide invoice numbers: blocks taken from one counter in etcd.
      invoicing_settings.take_numbers = [etcd](uint64_t count) {
        return cluster::etcd::take_from_counter(*etcd, "invoice_number", count);
      };
    }
    auto replication = start_replication(system, config, store.value(), store_was_empty);
    invoicing_settings.terms = replication.terms;
    auto invoicing = std::make_shared<actors::invoicing>(store.value(), invoicing_settings);
    auto ingest_settings = config.ingest_settings();
    ingest_settings.terms = replication.terms;
    auto make_local_directory = [&](actors::directory_actor parts_router) {
      return actors::spawn_directory(
          system, ingest_settings, config.query_settings(), store.value(), actor_gauges,
          std::move(parts_router),
          gateway::invoice_call_executor(invoicing, config.ingest_settings().limits));
    };
    auto cluster_gauges = members.value() ? std::make_shared<cluster::cluster_gauges>() : nullptr;
    auto etcd_gauges = std::make_shared<cluster::etcd::etcd_gauges>();
    auto directory = start_directory(system, config, members.value(), make_local_directory,
                                     store.value(), cluster_gauges, etcd_gauges);
    if (!directory.ok()) {
      log_error("{}", directory.error().message());
      return 1;
    }
    if (replication.replicator) {
      caf::anon_send(directory->fence, cluster::replicator_atom::value, replication.replicator);
    }
    std::unique_ptr<cluster::etcd::coordinator> coordinator;
    if (etcd) {
      auto coordinator_settings = config.coordinator_settings();
      coordinator_settings.terms = replication.terms;
      coordinator_settings.replicator = replication.replicator;
      coordinator = std::make_unique<cluster::etcd::coordinator>(
          etcd, coordinator_settings, directory->directory, directory->handover, directory->fence,
          etcd_gauges);
      // Serving before the member set is known would store others' customers
      // here (the hand-over would move them later); wait a little for it.
      if (!coordinator->wait_registered(3 * config.etcd_settings().value().timeout)) {
        log_warn("etcd did not answer yet ({}); serving as the only known member until it does",
                 coordinator->readiness());
      }
    }
    auto instances = actors::spawn_metald_instances(system, config.instances_settings(),
                                                    directory->directory, store.value());

    gateway::connect_router router;
    router.set_call_observer([metrics](std::string_view path, status_code code,
                                       std::chrono::nanoseconds took, std::string_view traceparent,
                                       const model::trace_parent& span) {
      metrics->record_call(path, code, took);
      observability::log_call(path, code, took, traceparent, span);
    });
    auto collector_settings = config.collector_settings();
    collector_settings.metrics = metrics;
    collector_settings.auth = auth;
    gateway::add_collector_service(router, system, directory->directory,
                                   std::move(collector_settings));
    auto metald_settings = config.metald_settings();
    metald_settings.auth = auth;
    gateway::add_metald_service(router, system, directory->directory, instances,
                                std::move(metald_settings));
    gateway::add_query_service(router, system, directory->directory,
                               {config.ingest_settings().limits, auth});
    gateway::add_live_usage_stream(router, system, directory->directory,
                                   {config.ingest_settings().limits, auth});
    gateway::add_admin_service(router, system, store.value(),
                               {config.backup_dir, config.raw_retention_days, auth});
    gateway::add_invoice_service(router, system, directory->directory, invoicing,
                                 config.ingest_settings().limits, auth);
    add_dashboard(router, config.ui_dir);
    router.add_get("/healthz", [] { return gateway::http_reply{200, "text/plain", "ok\n"}; });
    // Not ready while the ledger refuses writes (a full disk) or etcd is out
    // of reach: a balancer then sends ingest elsewhere; reads are still
    // served here.
    router.add_get("/readyz", [ledger = store.value(), coordinator = coordinator.get()] {
      const auto health = ledger->health();
      if (!health.writable) {
        return gateway::http_reply{503, "text/plain",
                                   fmt::format("not ready for ingest: {}\n", health.cause)};
      }
      const std::string not_ready = coordinator ? coordinator->readiness() : std::string{};
      if (!not_ready.empty()) {
        return gateway::http_reply{503, "text/plain", "etcd unreachable: " + not_ready + "\n"};
      }
      return gateway::http_reply{200, "text/plain", "ready\n"};
    });
    router.add_get("/metrics", [metrics] {
      return gateway::http_reply{200, std::string(observability::service_metrics::content_type),
                                 metrics->render()};
    });

    server_options->tls_event_log = [](bool failed, const std::string& event) {
      if (failed) {
        log_warn("{}", event);
      } else {
        log_info("{}", event);
      }
    };
    gateway::connect_server server{server_options.value(), std::move(router)};
    metrics->set_scrape_source([&server, ledger = store.value(), actor_gauges, cluster_gauges,
                                etcd_gauges, replication_gauges = replication.gauges,
                                etcd_mode = config.etcd_mode()] {
      const auto stats = ledger->stats();
      observability::scrape_gauges gauges;
      gauges.ledger_commits = stats.commits_requested;
      gauges.ledger_synced_writes = stats.synced_writes;
      gauges.calls_in_flight = server.in_flight();
      gauges.open_streams = server.open_streams();
      gauges.customer_actors =
          static_cast<uint64_t>(std::max<int64_t>(actor_gauges->customer_ledgers, 0));
      gauges.queued_parts = static_cast<uint64_t>(std::max<int64_t>(actor_gauges->queued_parts, 0));
      gauges.sst_bytes = stats.sst_bytes;
      gauges.memtable_bytes = stats.memtable_bytes;
      gauges.block_cache_bytes = stats.block_cache_bytes;
      gauges.estimated_windows = stats.estimated_windows;
      const auto health = ledger->health();
      gauges.ledger_writes_paused = !health.writable;
      gauges.ledger_disk_full = health.disk_full;
      gauges.ledger_disk_free_bytes = ledger->free_bytes();
      if (cluster_gauges) {
        gauges.cluster = observability::scrape_gauges::cluster_figures{
            cluster_gauges->peers_connected.load(),    cluster_gauges->handoff_pending.load(),
            cluster_gauges->handoff_held.load(),       cluster_gauges->handoff_delivered.load(),
            cluster_gauges->handover_customers.load(), {}};
        if (etcd_mode) {
          gauges.cluster->more = {
              {"etcd_reachable", etcd_gauges->reachable.load()},
              {"etcd_errors", static_cast<int64_t>(etcd_gauges->errors.load())},
              {"etcd_members", etcd_gauges->members.load()},
              {"etcd_member_changes", static_cast<int64_t>(etcd_gauges->member_changes.load())},
              {"etcd_leases_lost", static_cast<int64_t>(etcd_gauges->leases_lost.load())},
              {"shards_led", etcd_gauges->shards_led.load()},
              {"placement_changes", static_cast<int64_t>(etcd_gauges->placement_changes.load())},
              {"fence_refused", static_cast<int64_t>(etcd_gauges->fence_refused.load())}};
          add_replication_figures(*replication_gauges, gauges.cluster->more);
        }
      }
      return gauges;
    });
    const status plans = config.plans_file.empty()
                             ? status::ok_status()
                             : gateway::apply_plans_file(config.plans_file, *invoicing);
    auto bound = plans.ok() ? server.start() : decltype(server.start()){plans};
    if (!plans.ok()) {
      log_error("cannot apply --plans-file {}: {}", config.plans_file, plans.message());
      exit_code = 2;
    } else if (!bound.ok()) {
      log_error("cannot listen on {}: {}", config.listen, bound.error().message());
      exit_code = 1;
    } else {
      if (coordinator) coordinator->advertise_gateway(bound.value());
      log_info("billingd ready; data dir {}; {}; listening on {}", config.data_dir,
               config.tls_cert_file.empty() ? "plain HTTP"
                                            : (config.tls_client_ca_file.empty() ? "HTTPS"
                                               : config.tls_client_auth == "optional"
                                                   ? "HTTPS with optional client certificates"
                                                   : "HTTPS with client certificates"),
               bound.value());
      const int signal = wait_for_stop_signal(stop_signals);
      log_info("received {}; draining in-flight calls (up to {} ms)",
               signal == SIGTERM ? "SIGTERM" : "SIGINT", config.drain_timeout_ms);
      if (coordinator && config.etcd_leave_on_stop)
        leave_cluster(system, config, *coordinator, directory->handover);
      server.stop(std::chrono::milliseconds{config.drain_timeout_ms});
    }
    // The scrape source refers to the server and the ledger: drop it with them.
    metrics->set_scrape_source(nullptr);
    caf::anon_send_exit(instances, caf::exit_reason::user_shutdown);
    if (directory->handover)
      caf::anon_send_exit(directory->handover, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(directory->directory, caf::exit_reason::user_shutdown);
    if (replication.replicator) {
      caf::anon_send_exit(replication.replicator, caf::exit_reason::user_shutdown);
    }
  }                       // the actor system waits for every actor; the last ledger reference goes
  store.value().reset();  // closes RocksDB after the committer drained
  log_info("billingd stopped");
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t stop_signals = block_stop_signals();
  billingd_config config;
  actors::add_message_types(config);
  config.add_message_type<cluster::shard_fence>("billing.shard_fence");
  app::add_replication_message_types(config);
  config.load<caf::io::middleman>();
  auto args = normalize_arguments(config, argc, argv);
  if (auto error = config.parse(args, "billingd.ini")) {
    std::cerr << "billingd: " << config.render(error) << "\nTry --help.\n";
    return 2;
  }
  if (config.cli_helptext_printed) return 0;
  if (names_config_file(args) && !std::filesystem::exists(config.config_file_path)) {
    std::cerr << "billingd: config file " << config.config_file_path << " does not exist\n";
    return 2;
  }
  if (auto exit_code = run_maintenance_command(config)) return *exit_code;
  return run_server(config, stop_signals);
}

}  // namespace billing::app

int main(int argc, char** argv) {
  return billing::app::main(argc, argv);
}
