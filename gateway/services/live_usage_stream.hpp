// Binds billing.v1.BillingQueryService/StreamLiveUsage: each stream is a
// subscriber actor that asks the customer's ledger (through the directory)
// for a snapshot and then forwards one UsageUpdate per acknowledged ingest.
//
// A slow client never slows ingest: the ledger only sends messages; when the
// stream's buffer is full the subscriber coalesces updates (deltas summed,
// latest running totals and sequence kept, so the sequence shows a gap) and
// sends the result when the buffer drains. Order is never changed. The
// subscription ends when the client leaves, the call's deadline passes, the
// server stops, or the ledger goes away (unavailable: subscribe again).
#pragma once

#include <caf/actor_system.hpp>

#include "actors/messages.hpp"
#include "gateway/connect_server.hpp"
#include "gateway/services/query_service.hpp"

namespace billing::gateway {

// Like the unary queries, a stream needs the customer scope of the requested
// customer (or admin): see check_customer_call.
void add_live_usage_stream(connect_router& router, caf::actor_system& system,
                           actors::directory_actor directory, query_service_settings settings);

}  // namespace billing::gateway
