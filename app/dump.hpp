// Maintenance commands that read the ledger offline.
#pragma once

#include <ostream>
#include <string>

#include "storage/ledger_store.hpp"

namespace billing::app {

// Writes every stored window of `customer_id` to `out`, one proto3-JSON
// billing.v1.BillingMetrics per line.
status dump_windows(const storage::ledger_store& store, const std::string& customer_id,
                    std::ostream& out);

// Writes `customer_id`'s audit trail to `out`, one JSON object per line:
// its ingest records ({"kind":"ingest", batch_id, instance_id, region,
// received_at_ns, caller, accepted, duplicate, rejected}) oldest first, then
// its refused conflicting re-sends ({"kind":"conflict", batch_id,
// instance_id, region, received_at_ns, vm_id, window_start_ns}).
status dump_audit(const storage::ledger_store& store, const std::string& customer_id,
                  std::ostream& out);

// Verifies the audit chain and writes the result to `out` as one proto3-JSON
// billing.v1.VerifyAuditChainResponse line; the result says whether it is intact.
result<bool> verify_audit(const storage::ledger_store& store, std::ostream& out);

}  // namespace billing::app
