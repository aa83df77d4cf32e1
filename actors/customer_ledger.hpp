// The actor that owns one customer's ledger. It is the only writer of the
// customer's key range, which is what makes dedup race-free: it judges a
// window against what is stored, and against what it is committing, before
// anything else can write that identity.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "actors/actor_gauges.hpp"
#include "actors/messages.hpp"
#include "actors/shard_terms.hpp"
#include "storage/ledger_store.hpp"

namespace billing::actors {

// `gauges` (may be null) counts the ledger while it lives and its queued parts.
// After `idle` without work (nothing queued, nothing committing, no live
// subscriber) the ledger stops with exit_reason::user_shutdown so that its
// linked directory forgets it; 0 keeps it forever. `max_window_ns` is the
// longest window ingest accepts (live cost-to-date reads the raw windows of
// hours split by a rate change from that far back, as invoices do).
customer_actor spawn_customer_ledger(caf::actor_system& system, std::string customer_id,
                                     std::shared_ptr<storage::ledger_store> store,
                                     std::shared_ptr<actor_gauges> gauges = nullptr,
                                     std::chrono::seconds idle = std::chrono::seconds{0},
                                     int64_t max_window_ns = int64_t{3600} * 1'000'000'000,
                                     std::shared_ptr<const shard_terms> terms = nullptr);

}  // namespace billing::actors
