#include "gateway/services/admin_service.hpp"

#include <caf/all.hpp>

#include "billing/v1/admin.pb.h"
#include "gateway/services/access.hpp"
#include "gateway/services/actor_bridge.hpp"
#include "gateway/services/convert.hpp"
#include "model/calendar.hpp"
#include "observability/log.hpp"

namespace billing::gateway {
using observability::log_info;
using observability::log_warn;

namespace {

v1::CreateBackupResponse to_response(const storage::backup_info& info) {
  v1::CreateBackupResponse response;
  response.set_backup_id(info.backup_id);
  response.mutable_created_at()->set_seconds(info.created_at_unix_seconds);
  response.set_size_bytes(info.size_bytes);
  response.set_file_count(info.file_count);
  return response;
}

}  // namespace

v1::VerifyAuditChainResponse to_verify_response(const storage::audit_chain_report& report) {
  v1::VerifyAuditChainResponse response;
  response.set_intact(report.intact);
  response.set_entries_verified(report.entries_verified);
  response.set_head_sequence(report.head_sequence);
  response.set_head_hash(report.head_hash_hex);
  response.set_problem(report.problem);
  response.set_first_bad_sequence(report.first_bad_sequence);
  return response;
}

void add_admin_service(connect_router& router, caf::actor_system& system,
                       std::shared_ptr<storage::ledger_store> store, admin_settings settings) {
  router.add_unary<v1::ApplyRetentionRequest, v1::ApplyRetentionResponse>(
      "/billing.v1.BillingAdminService/ApplyRetention",
      [&system, store, days = settings.raw_retention_days, auth = settings.auth](
          const call_context& context, v1::ApplyRetentionRequest,
          responder<v1::ApplyRetentionResponse> respond) {
        if (auto caller = authorize(auth.get(), context, security::require_admin()); !caller.ok()) {
          respond(caller.error());
          return;
        }
        if (days == 0) {
          respond(
              status{status_code::failed_precondition,
                     "raw-window retention is off: start billingd with --raw-retention-days=N"});
          return;
        }
        // Compaction blocks for as long as it rewrites.
        run_detached<v1::ApplyRetentionResponse>(
            system, std::move(respond), [store, days]() -> result<v1::ApplyRetentionResponse> {
              const int64_t cutoff = model::unix_now_ns() - int64_t{days} * model::kNanosPerDay;
              if (status applied = store->apply_retention(); !applied.ok()) {
                log_warn("applying retention failed: {}", applied.message());
                return applied;
              }
              log_info("retention applied: raw windows before {} days ago dropped", days);
              v1::ApplyRetentionResponse response;
              *response.mutable_cutoff() = to_timestamp(cutoff);
              response.set_retention_days(days);
              return response;
            });
      });

  router.add_unary<v1::CreateBackupRequest, v1::CreateBackupResponse>(
      "/billing.v1.BillingAdminService/CreateBackup",
      [&system, store, dir = settings.backup_dir, auth = settings.auth](
          const call_context& context, v1::CreateBackupRequest,
          responder<v1::CreateBackupResponse> respond) {
        if (auto caller = authorize(auth.get(), context, security::require_admin()); !caller.ok()) {
          respond(caller.error());
          return;
        }
        if (dir.empty()) {
          respond(status{status_code::failed_precondition,
                         "backups are disabled: start billingd with --backup-dir=DIR"});
          return;
        }
        // The copy may take minutes.
        run_detached<v1::CreateBackupResponse>(
            system, std::move(respond), [store, dir]() -> result<v1::CreateBackupResponse> {
              auto backup = store->create_backup(dir);
              if (!backup.ok()) {
                log_warn("backup into {} failed: {}", dir, backup.error().message());
                return backup.error();
              }
              log_info("backup {} created in {}: {} files, {} bytes", backup.value().backup_id, dir,
                       backup.value().file_count, backup.value().size_bytes);
              return to_response(backup.value());
            });
      });

  router.add_unary<v1::VerifyAuditChainRequest, v1::VerifyAuditChainResponse>(
      "/billing.v1.BillingAdminService/VerifyAuditChain",
      [&system, store, auth = settings.auth](const call_context& context,
                                             v1::VerifyAuditChainRequest,
                                             responder<v1::VerifyAuditChainResponse> respond) {
        if (auto caller = authorize(auth.get(), context, security::require_admin()); !caller.ok()) {
          respond(caller.error());
          return;
        }
        // Reads the whole chain, like a backup.
        run_detached<v1::VerifyAuditChainResponse>(
            system, std::move(respond), [store]() -> result<v1::VerifyAuditChainResponse> {
              auto report = store->verify_audit_chain();
              if (!report.ok()) return report.error();
              if (!report.value().intact) {
                log_warn("the audit chain is broken: {}", report.value().problem);
              }
              return to_verify_response(report.value());
            });
      });
}

}  // namespace billing::gateway
