// Plans and invoices over the ledger: drafts computed on demand from the
// hourly rollups (and the raw windows of hours split by a rate change),
// finalization that numbers, hashes and stores an invoice once, and the
// adjustment of late data for finalized periods. Every call blocks on
// RocksDB (and, for writes, on the group commit's fsync): run it off the
// actors' scheduler (the gateway uses a detached actor per call). Plan changes
// and finalizations are serialized by one mutex, so the checks they make
// (finalized periods, invoice numbers) hold when they write.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/shard_terms.hpp"
#include "model/invoice.hpp"
#include "model/pricing.hpp"
#include "storage/ledger_store.hpp"

namespace billing::actors {

struct invoicing_settings {
  // The longest window ingest accepts: a split hour's raw windows are
  // scanned from this much before the hour.
  int64_t max_window_ns = int64_t{3600} * 1'000'000'000;
  // Wall clock (unix ns); tests may replace it.
  std::function<int64_t()> clock;
  // Cluster-wide invoice numbers (etcd mode): takes `count` consecutive
  // numbers no other node or run gets, answering the first. Unset: numbers
  // come from this ledger's own sequence.
  std::function<result<uint64_t>(uint64_t count)> take_numbers{};
  // Replicated ledgers (issue 16): customers' writes go to their shard's log
  // as its leader; null when not replicated.
  std::shared_ptr<const shard_terms> terms{};
};

// Feeds `builder` what an invoice of [start_ns, end_ns) is computed from: the
// customer's hourly rollups and the raw windows of the hours a rate change
// splits (scanned from `max_window_ns` before each such hour).
status feed_invoice_builder(const storage::ledger_store& store, const std::string& customer_id,
                            int64_t start_ns, int64_t end_ns, int64_t max_window_ns,
                            model::invoice_builder& builder);

class invoicing {
 public:
  invoicing(std::shared_ptr<storage::ledger_store> store, invoicing_settings settings);

  // Adds or replaces the version of `customer_id`'s plan ("" the default)
  // with the same effective_from; answers the customer's effective versions.
  // A version equal to a stored one changes and records nothing. Otherwise
  // invalid_argument for a bad version, failed_precondition when it would
  // take effect before the end of a finalized period.
  result<std::vector<model::plan_version>> set_plan(const std::string& customer_id,
                                                    const model::plan_version& version,
                                                    const std::string& who);
  result<std::vector<model::plan_version>> plan(const std::string& customer_id) const;

  // The finalized invoice, or a draft (audited as a draft request).
  result<model::invoice> get_invoice(const std::string& customer_id, int64_t period_start_ns,
                                     const std::string& who);
  result<std::vector<model::invoice>> list_invoices(const std::string& customer_id) const;

  // Finalizes the period for `customer_ids` (empty: every customer with usage
  // in it). failed_precondition if the period has not ended yet or a later
  // period of a customer is already finalized.
  result<std::vector<model::invoice>> finalize(int64_t period_start_ns,
                                               std::vector<std::string> customer_ids,
                                               const std::string& who);

 private:
  // The period's own charges from the ledger, without adjustments.
  result<model::invoice> charges(const std::string& customer_id, int64_t start_ns,
                                 int64_t end_ns) const;
  // charges() plus adjustment lines for late data in finalized earlier periods.
  result<model::invoice> draft(const std::string& customer_id, int64_t start_ns,
                               int64_t end_ns) const;
  status commit(const std::string& customer_id, storage::write_set writes);

  std::shared_ptr<storage::ledger_store> store_;
  invoicing_settings settings_;
  std::mutex writes_;
};

}  // namespace billing::actors
