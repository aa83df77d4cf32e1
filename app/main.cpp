// billingd: the billing-service node. Opens the ledger, starts the actors and
// the Connect gateway, and on SIGTERM/SIGINT drains in-flight calls before
// closing RocksDB cleanly.
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <csignal>
#include <filesystem>
#include <iostream>

#include "actors/directory.hpp"
#include "app/config.hpp"
#include "app/dump.hpp"
#include "gateway/services/admin_service.hpp"
#include "gateway/services/collector_service.hpp"
#include "gateway/services/live_usage_stream.hpp"
#include "gateway/services/metald_service.hpp"
#include "gateway/services/query_service.hpp"
#include "observability/log.hpp"
#include "observability/metrics.hpp"

namespace billing::app {
namespace {

using observability::log_error;
using observability::log_info;

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

int run_server(billingd_config& config, const sigset_t& stop_signals) {
  auto server_options = config.server_options();
  if (!server_options.ok()) {
    log_error("{}", server_options.error().message());
    return 2;
  }
  auto store = storage::ledger_store::open(config.store_options());
  if (!store.ok()) {
    log_error("cannot open the ledger in {}: {}", config.data_dir, store.error().message());
    return 1;
  }
  int exit_code = 0;
  {
    caf::actor_system system{config};
    auto directory = actors::spawn_directory(system, config.ingest_settings(),
                                             config.query_settings(), store.value());
    auto instances = actors::spawn_metald_instances(system, config.instances_settings(), directory,
                                                    store.value());

    // Shared by the services that record into it; outlives the server.
    auto metrics = std::make_shared<observability::service_metrics>();
    gateway::connect_router router;
    router.set_call_observer(
        [metrics](std::string_view path, status_code code, std::chrono::nanoseconds took) {
          metrics->record_call(path, code, took);
        });
    auto collector_settings = config.collector_settings();
    collector_settings.metrics = metrics;
    gateway::add_collector_service(router, system, directory, std::move(collector_settings));
    gateway::add_metald_service(router, system, directory, instances, store.value(),
                                config.metald_settings());
    gateway::add_query_service(router, system, directory, {config.ingest_settings().limits});
    gateway::add_live_usage_stream(router, system, directory, config.ingest_settings().limits);
    gateway::add_admin_service(router, system, store.value(),
                               {config.backup_dir, config.raw_retention_days});
    router.add_get("/healthz", [] { return gateway::http_reply{200, "text/plain", "ok\n"}; });
    router.add_get("/readyz", [] { return gateway::http_reply{200, "text/plain", "ready\n"}; });
    router.add_get("/metrics", [metrics] {
      return gateway::http_reply{200, std::string(observability::service_metrics::content_type),
                                 metrics->render()};
    });

    gateway::connect_server server{server_options.value(), std::move(router)};
    metrics->set_scrape_source([&server, ledger = store.value()] {
      const auto stats = ledger->stats();
      return observability::scrape_gauges{stats.commits_requested, stats.synced_writes,
                                          server.in_flight(), server.open_streams()};
    });
    auto bound = server.start();
    if (!bound.ok()) {
      log_error("cannot listen on {}: {}", config.listen, bound.error().message());
      exit_code = 1;
    } else {
      log_info("billingd ready; data dir {}; listening on {}", config.data_dir, bound.value());
      const int signal = wait_for_stop_signal(stop_signals);
      log_info("received {}; draining in-flight calls (up to {} ms)",
               signal == SIGTERM ? "SIGTERM" : "SIGINT", config.drain_timeout_ms);
      server.stop(std::chrono::milliseconds{config.drain_timeout_ms});
    }
    // The scrape source refers to the server and the ledger: drop it with them.
    metrics->set_scrape_source(nullptr);
    caf::anon_send_exit(instances, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
  }                       // the actor system waits for every actor; the last ledger reference goes
  store.value().reset();  // closes RocksDB after the committer drained
  log_info("billingd stopped");
  return exit_code;
}

int run_restore(const billingd_config& config) {
  auto restored = storage::restore_latest(config.restore_from, config.data_dir);
  if (!restored.ok()) {
    log_error("restore from {} into {} failed: {}", config.restore_from, config.data_dir,
              restored.error().message());
    return 1;
  }
  log_info("restored backup {} ({} files, {} bytes) from {} into {}", restored.value().backup_id,
           restored.value().file_count, restored.value().size_bytes, config.restore_from,
           config.data_dir);
  return 0;
}

int run_dump(const billingd_config& config) {
  auto store = storage::ledger_store::open(config.store_options());
  if (!store.ok()) {
    log_error("cannot open the ledger in {}: {}", config.data_dir, store.error().message());
    return 1;
  }
  if (status dumped = dump_windows(*store.value(), config.dump_windows, std::cout); !dumped.ok()) {
    log_error("dump failed: {}", dumped.message());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t stop_signals = block_stop_signals();
  billingd_config config;
  actors::add_message_types(config);
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
  if (!config.dump_windows.empty()) return run_dump(config);
  if (!config.restore_from.empty()) return run_restore(config);
  return run_server(config, stop_signals);
}

}  // namespace billing::app

int main(int argc, char** argv) {
  return billing::app::main(argc, argv);
}
