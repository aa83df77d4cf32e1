// The billing records of the ledger: price plan versions, finalized invoices,
// the node's invoice counters and the financial audit entries (layouts in
// storage/README.md). Finalized invoices are stored once with a SHA-256 over
// their canonical encoding, checked on every read, and never rewritten.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/invoice.hpp"
#include "model/pricing.hpp"
#include "model/status.hpp"
#include "storage/ledger_store.hpp"

namespace billing::storage {

inline constexpr uint8_t plan_version_format = 1;
inline constexpr uint8_t invoice_format = 1;
// Conflicts are format 1; the security branch uses 2 for ingest records.
inline constexpr uint8_t audit_entry_format = 3;

// plans: lp(customer) | ts(effective_from); customer "" is the default plan.
result<std::string> plan_key(std::string_view customer_id, int64_t effective_from_ns);
// invoices: lp(customer) | ts(period_start).
result<std::string> invoice_key(std::string_view customer_id, int64_t period_start_ns);

std::string encode_plan_version(const model::plan_version& version);
result<model::plan_version> decode_plan_version(std::string_view value);

// The canonical encoding of an invoice without its hash: what the hash covers.
std::string encode_invoice_content(const model::invoice& bill);
// Sets content_hash: SHA-256 (lowercase hex) of encode_invoice_content.
void seal_invoice(model::invoice& bill);
// A stored invoice: data_loss if it does not decode or its hash does not match.
result<model::invoice> decode_invoice(std::string_view value);

// The versions of one plan ("" for the default), ascending by effective_from.
result<std::vector<model::plan_version>> load_plan_versions(const ledger_store& store,
                                                            std::string_view customer_id);
// The versions that price `customer_id`: the default plan's versions that
// take effect before the customer's first own version, then its own.
result<std::vector<model::plan_version>> effective_plan(const ledger_store& store,
                                                        std::string_view customer_id);

result<std::optional<model::invoice>> load_invoice(const ledger_store& store,
                                                   std::string_view customer_id,
                                                   int64_t period_start_ns);
// A customer's finalized invoices, oldest period first.
result<std::vector<model::invoice>> list_invoices(const ledger_store& store,
                                                  std::string_view customer_id);

struct invoice_counters {
  uint64_t next_number = 1;
  int64_t finalized_through_ns = INT64_MIN;  // latest end of a finalized period
};
result<invoice_counters> load_invoice_counters(const ledger_store& store);

// Customers with an hourly rollup in [from_ns, to_ns), by id (one seek per
// customer of the node).
result<std::vector<std::string>> customers_with_usage(const ledger_store& store, int64_t from_ns,
                                                      int64_t to_ns);

struct audit_entry {
  int64_t recorded_at_ns = 0;
  std::string kind;
  std::string who;
  std::string what;
};
// The financial audit entries of `customer_id` ("" for the default plan), oldest first.
status scan_audit_entries(const ledger_store& store, std::string_view customer_id,
                          const std::function<bool(const audit_entry&)>& visit);

}  // namespace billing::storage
