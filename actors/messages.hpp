// The actors' vocabulary: atoms, typed interfaces, and the inspect overloads
// that let model types travel in CAF messages (and, later, between nodes).
#pragma once

#include <caf/all.hpp>

#include <string>
#include <vector>

#include "model/ingest.hpp"
#include "model/usage_window.hpp"

namespace billing::actors {

using ingest_atom = caf::atom_constant<caf::atom("ingest")>;
using append_atom = caf::atom_constant<caf::atom("append")>;
using committed_atom = caf::atom_constant<caf::atom("committed")>;

// A customer's ledger: the only writer of that customer's key range.
using customer_actor = caf::typed_actor<
    // Stores the windows of one customer's part of a batch; one outcome per window.
    caf::replies_to<append_atom, model::customer_part>::with<std::vector<model::item_outcome>>,
    // Internal: the store finished commit `id` with the status (code, message).
    caf::reacts_to<committed_atom, uint64_t, uint8_t, std::string>>;

// Validates a region's batches and splits them by customer.
using ingest_actor =
    caf::typed_actor<caf::replies_to<ingest_atom, model::ingest_batch>::with<model::ingest_report>>;

// Finds (spawning on demand) the ingest actor of a region and the ledger of
// a customer, and delegates to them.
using directory_actor = caf::typed_actor<
    caf::replies_to<ingest_atom, model::ingest_batch>::with<model::ingest_report>,
    caf::replies_to<append_atom, model::customer_part>::with<std::vector<model::item_outcome>>>;

// Announces every type above to the actor system (required for remote actors).
void add_message_types(caf::actor_system_config& config);

}  // namespace billing::actors

namespace billing::model {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage_window& x) {
  return f(caf::meta::type_name("usage_window"), x.customer_id, x.region, x.vm_id, x.sampled_at_ns,
           x.window_start_ns, x.window_end_ns, x.cpu_time_nanos, x.cpu_utilization_pct,
           x.cpu_cores_used, x.memory_bytes_used, x.memory_bytes_peak, x.memory_bytes_seconds,
           x.disk_read_bytes, x.disk_write_bytes, x.disk_read_ops, x.disk_write_ops,
           x.network_rx_bytes, x.network_tx_bytes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item_outcome& x) {
  return f(caf::meta::type_name("item_outcome"), x.index, x.status, x.reason, x.message);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_meta& x) {
  return f(caf::meta::type_name("batch_meta"), x.batch_id, x.instance_id, x.region,
           x.received_at_ns);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ingest_batch& x) {
  return f(caf::meta::type_name("ingest_batch"), x.meta, x.windows);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, customer_part& x) {
  return f(caf::meta::type_name("customer_part"), x.customer_id, x.meta, x.indices, x.windows);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ingest_report& x) {
  return f(caf::meta::type_name("ingest_report"), x.outcomes);
}

}  // namespace billing::model
