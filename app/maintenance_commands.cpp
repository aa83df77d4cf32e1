#include "app/maintenance_commands.hpp"

#include <functional>
#include <iostream>

#include "app/dump.hpp"
#include "observability/log.hpp"
#include "storage/backup.hpp"
#include "storage/ledger_store.hpp"

namespace billing::app {
namespace {

using observability::log_error;
using observability::log_info;

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
  // A restored replica lacks what it acknowledged after the backup: as one
  // whose disk was lost, it counts toward its shards' majorities only once it
  // has caught up with a leader (cluster/replication).
  auto options = config.store_options();
  auto store = options.ok() ? storage::ledger_store::open(options.value())
                            : result<std::shared_ptr<storage::ledger_store>>(options.error());
  storage::write_set mark;
  mark.mark_unsynced_pending();
  if (status marked = store.ok() ? store.value()->commit_and_wait(std::move(mark)) : store.error();
      !marked.ok()) {
    log_error("restored, but marking the ledger as behind its replicas failed: {}",
              marked.message());
    return 1;
  }
  return 0;
}

// Runs an offline maintenance command on the ledger: `command` returns the
// exit code.
int run_offline(const billingd_config& config,
                const std::function<int(const storage::ledger_store&)>& command) {
  auto store_options = config.store_options();
  if (!store_options.ok()) {
    log_error("{}", store_options.error().message());
    return 2;
  }
  auto store = storage::ledger_store::open(store_options.value());
  if (!store.ok()) {
    log_error("cannot open the ledger in {}: {}", config.data_dir, store.error().message());
    return 1;
  }
  return command(*store.value());
}

// Prints one customer's data with `dump` (dump_windows or dump_audit; or
// everything with dump_replicated, `customer_id` then only names it in errors).
using customer_dump = status (*)(const storage::ledger_store&, const std::string& customer_id,
                                 std::ostream& out);
int run_dump(const billingd_config& config, customer_dump dump, const std::string& customer_id) {
  return run_offline(config, [&](const storage::ledger_store& store) {
    if (status dumped = dump(store, customer_id, std::cout); !dumped.ok()) {
      log_error("dump of '{}' failed: {}", customer_id, dumped.message());
      return 1;
    }
    return 0;
  });
}

int run_verify_audit(const billingd_config& config) {
  return run_offline(config, [](const storage::ledger_store& store) {
    auto report = verify_audit(store, std::cout);
    if (!report.ok()) {
      log_error("audit chain verification failed: {}", report.error().message());
      return 1;
    }
    // Also on stderr, which is what a failing script or test shows.
    if (!report.value().intact) {
      log_error("the audit chain is broken: {}", report.value().problem);
    }
    return report.value().intact ? 0 : 1;
  });
}

}  // namespace

std::optional<int> run_maintenance_command(const billingd_config& config) {
  if (!config.dump_windows.empty()) return run_dump(config, dump_windows, config.dump_windows);
  if (!config.dump_audit.empty()) return run_dump(config, dump_audit, config.dump_audit);
  if (config.dump_replicated) {
    auto every_record = [](const storage::ledger_store& store, const std::string&,
                           std::ostream& out) { return dump_replicated(store, out); };
    return run_dump(config, every_record, "the replicated families");
  }
  if (config.verify_audit) return run_verify_audit(config);
  if (!config.restore_from.empty()) return run_restore(config);
  return std::nullopt;
}

}  // namespace billing::app
