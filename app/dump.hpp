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
// billing.v1.VerifyAuditChainResponse line, and returns what it found.
result<storage::audit_chain_report> verify_audit(const storage::ledger_store& store,
                                                 std::ostream& out);

// Writes every record of the column families every replica of a shard holds
// byte-identical (storage::replicated_families(): windows, dedup, audit,
// rollups, plans, invoices, vm_state, vm_index, metald_gaps; not the node's
// own meta with the audit chain links, metald_instances, handoff and
// replication) to `out`, in family then key order, one line per record:
// `<family name>\t<hex key>\t<hex value>` (lowercase hex; rollups as read,
// their merge operands folded), so that two replicas compare with diff.
status dump_replicated(const storage::ledger_store& store, std::ostream& out);

}  // namespace billing::app
