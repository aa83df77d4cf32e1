// Binds billing.v1.BillingAdminService: operator actions that are slow or
// blocking (backups) run on a detached CAF actor, never on the gateway's io
// threads or the actors' shared scheduler.
#pragma once

#include <caf/actor_system.hpp>

#include <memory>
#include <string>

#include "billing/v1/admin.pb.h"
#include "gateway/connect_server.hpp"
#include "security/auth.hpp"
#include "storage/ledger_store.hpp"

namespace billing::gateway {

struct admin_settings {
  // Where CreateBackup writes; empty disables backups (failed_precondition).
  std::string backup_dir;
  // Raw-window retention the store was opened with; 0 is off.
  uint32_t raw_retention_days = 0;
  // Every admin call needs the `admin` scope; null refuses every call.
  std::shared_ptr<const security::authenticator> auth;
};

// The wire form of an audit chain verification (also printed by
// `billingd --verify-audit`).
v1::VerifyAuditChainResponse to_verify_response(const storage::audit_chain_report& report);

void add_admin_service(connect_router& router, caf::actor_system& system,
                       std::shared_ptr<storage::ledger_store> store, admin_settings settings);

}  // namespace billing::gateway
