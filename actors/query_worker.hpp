// Answers GetCustomerUsage and GetBillingWindow from the store. Reads need no
// owner: each RocksDB read sees whole WriteBatches, so a query sees a
// customer's ingest either entirely or not at all, and everything
// acknowledged before the query was sent.
#pragma once

#include <memory>
#include <optional>

#include "actors/messages.hpp"
#include "model/usage_query.hpp"
#include "storage/ledger_store.hpp"

namespace billing::actors {

struct query_settings {
  model::query_limits limits;
  // The longest window ingest accepts: a billing-window scan starts this much
  // before the range so that windows reaching into it are found.
  int64_t max_window_ns = int64_t{3600} * 1'000'000'000;
  // Query actors per node.
  uint32_t workers = 4;
};

query_actor spawn_query_worker(caf::actor_system& system, query_settings settings,
                               std::shared_ptr<storage::ledger_store> store);

// The query work itself, without an actor (for tests and benchmarks).
result<model::customer_usage> customer_usage(const storage::ledger_store& store,
                                             const model::usage_query& query,
                                             const query_settings& settings);
// Answered from the hourly rollups for the range's whole hours when they
// hold exactly the stored windows (model/rollup_window), otherwise from the
// raw windows alone.
result<model::billing_window> billing_window(const storage::ledger_store& store,
                                             const model::window_query& query,
                                             const query_settings& settings);
// Its two ways, for tests and benchmarks: from the raw windows alone (the
// reference), and with the rollups, nullopt when they cannot give the exact
// answer (rollups that do not match the windows, an overflow, any error).
result<model::billing_window> billing_window_from_raw(const storage::ledger_store& store,
                                                      const model::window_query& query,
                                                      const query_settings& settings);
std::optional<model::billing_window> billing_window_from_rollups(const storage::ledger_store& store,
                                                                 const model::window_query& query,
                                                                 const query_settings& settings);

}  // namespace billing::actors
