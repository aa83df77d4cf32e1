// Binds billing.v1.BillingAdminService: operator actions that are slow or
// blocking (backups) run on a detached CAF actor, never on the gateway's io
// threads or the actors' shared scheduler.
#pragma once

#include <caf/actor_system.hpp>

#include <memory>
#include <string>

#include "gateway/connect_server.hpp"
#include "storage/ledger_store.hpp"

namespace billing::gateway {

struct admin_settings {
  // Where CreateBackup writes; empty disables backups (failed_precondition).
  std::string backup_dir;
  // Raw-window retention the store was opened with; 0 is off.
  uint32_t raw_retention_days = 0;
};

void add_admin_service(connect_router& router, caf::actor_system& system,
                       std::shared_ptr<storage::ledger_store> store, admin_settings settings);

}  // namespace billing::gateway
