// The actors' vocabulary: atoms, typed interfaces, and the inspect overloads
// that let model types travel in CAF messages (and, later, between nodes).
#pragma once

#include <caf/all.hpp>

#include <functional>
#include <string>
#include <vector>

#include "model/ingest.hpp"
#include "model/metald.hpp"
#include "model/usage_query.hpp"
#include "model/usage_window.hpp"
#include "storage/ledger_store.hpp"

namespace billing::actors {

using ingest_atom = caf::atom_constant<caf::atom("ingest")>;
using append_atom = caf::atom_constant<caf::atom("append")>;
using committed_atom = caf::atom_constant<caf::atom("committed")>;
using usage_atom = caf::atom_constant<caf::atom("usage")>;
using window_atom = caf::atom_constant<caf::atom("window")>;
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using update_atom = caf::atom_constant<caf::atom("update")>;
using metald_atom = caf::atom_constant<caf::atom("metald")>;
using locate_atom = caf::atom_constant<caf::atom("locate")>;
using import_atom = caf::atom_constant<caf::atom("import")>;
using call_atom = caf::atom_constant<caf::atom("call")>;
using forget_atom = caf::atom_constant<caf::atom("forget")>;
using idle_check_atom = caf::atom_constant<caf::atom("idlecheck")>;

// A unary call the receiving node has authorized, run on the node that owns
// `customer_id` ("" runs it on every node): the request's protobuf bytes and
// the authenticated caller, as the owner's call_executor takes them.
struct forwarded_call {
  std::string customer_id;
  std::string method;
  std::string request;
  std::string caller;
};

// Runs a forwarded call on this node's ledger (blocking: called on a thread of
// its own) and answers the response's protobuf bytes.
using call_executor = std::function<result<std::string>(const forwarded_call&)>;

// Receives a customer's live usage updates (one per StreamLiveUsage call).
using subscriber_actor = caf::typed_actor<caf::reacts_to<update_atom, model::usage_update>>;

// A customer's ledger: the only writer of that customer's key range.
using customer_actor = caf::typed_actor<
    // Stores the windows of one customer's part of a batch; one outcome per window.
    caf::replies_to<append_atom, model::customer_part>::with<std::vector<model::item_outcome>>,
    // Internal: the store finished commit `id` with the status (code, message).
    caf::reacts_to<committed_atom, uint64_t, uint8_t, std::string>,
    // Internal: time to see whether the ledger has been idle long enough to stop.
    caf::reacts_to<idle_check_atom>,
    // Adds a live-usage subscriber; the answer is its snapshot, after which it
    // gets an update_atom message per acknowledged ingest until it exits.
    caf::replies_to<subscribe_atom, subscriber_actor>::with<model::usage_update>,
    // Applies a metald operation to one VM (model/metald.hpp); answers, once
    // durable, the samples added (lifecycle ops: 1 when the state changed).
    caf::replies_to<metald_atom, model::metald_op>::with<uint32_t>>;

// Answers read queries from the store (a small pool per node: reads never
// wait behind a customer's commits).
using query_actor = caf::typed_actor<
    caf::replies_to<usage_atom, model::usage_query>::with<model::customer_usage>,
    caf::replies_to<window_atom, model::window_query>::with<model::billing_window>>;

// Validates a region's batches and splits them by customer.
using ingest_actor =
    caf::typed_actor<caf::replies_to<ingest_atom, model::ingest_batch>::with<model::ingest_report>>;

// Finds (spawning on demand) the ingest actor of a region and the ledger of
// a customer, and delegates to them.
using directory_actor = caf::typed_actor<
    caf::replies_to<ingest_atom, model::ingest_batch>::with<model::ingest_report>,
    caf::replies_to<append_atom, model::customer_part>::with<std::vector<model::item_outcome>>,
    caf::replies_to<usage_atom, model::usage_query>::with<model::customer_usage>,
    caf::replies_to<window_atom, model::window_query>::with<model::billing_window>,
    caf::replies_to<subscribe_atom, std::string, subscriber_actor>::with<model::usage_update>,
    caf::replies_to<metald_atom, model::metald_op>::with<uint32_t>,
    // The customer of a metald VM (from the vm index), "" when unknown here.
    caf::replies_to<locate_atom, std::string>::with<std::string>,
    // Shard hand-over: stores a customer's records copied from its previous
    // owner, each only where no record with its key exists; answers how many
    // were stored.
    caf::replies_to<import_atom, storage::customer_records>::with<uint32_t>,
    // Runs a forwarded call on the owner (on every node for customer ""); one
    // response per node that ran it.
    caf::replies_to<call_atom, forwarded_call>::with<std::vector<std::string>>,
    // Shard hand-over, after a customer moved away: stops its ledger actor,
    // whose caches (rollup totals, month to date) describe data about to be
    // deleted; the next message for the customer starts a fresh one. True if
    // one was running.
    caf::replies_to<forget_atom, std::string>::with<bool>>;

// Announces every type above to the actor system (required for remote actors).
void add_message_types(caf::actor_system_config& config);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, forwarded_call& x) {
  return f(caf::meta::type_name("forwarded_call"), x.customer_id, x.method, x.request, x.caller);
}

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
           x.received_at_ns, x.caller);
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

// CAF 0.17 has no 128-bit integers: a usage sum travels as its high and low
// 64-bit words.
struct usage_sum_words {
  usage_sum* value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage_sum_words& x) {
  auto high = static_cast<uint64_t>(*x.value >> 64);
  auto low = static_cast<uint64_t>(*x.value);
  auto store = caf::meta::load_callback([&]() -> caf::error {
    *x.value = (static_cast<usage_sum>(high) << 64) | low;
    return caf::none;
  });
  return f(caf::meta::type_name("usage_sum"), high, low, store);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage_totals& x) {
  auto words = [](usage_sum& sum) { return usage_sum_words{&sum}; };
  return f(caf::meta::type_name("usage_totals"), words(x.cpu_time_nanos),
           words(x.memory_bytes_seconds), x.memory_bytes_peak, words(x.disk_read_bytes),
           words(x.disk_write_bytes), words(x.disk_read_ops), words(x.disk_write_ops),
           words(x.network_rx_bytes), words(x.network_tx_bytes), words(x.vm_active_nanos),
           words(x.window_count));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage_query& x) {
  return f(caf::meta::type_name("usage_query"), x.customer_id, x.start_ns, x.end_ns, x.grain);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage_bucket& x) {
  return f(caf::meta::type_name("usage_bucket"), x.start_ns, x.end_ns, x.totals);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, region_usage& x) {
  return f(caf::meta::type_name("region_usage"), x.region, x.totals);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vm_usage& x) {
  return f(caf::meta::type_name("vm_usage"), x.vm_id, x.region, x.totals, x.first_seen_ns,
           x.last_seen_ns);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, customer_usage& x) {
  return f(caf::meta::type_name("customer_usage"), x.customer_id, x.totals, x.buckets, x.regions,
           x.vms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, window_query& x) {
  return f(caf::meta::type_name("window_query"), x.customer_id, x.start_ns, x.end_ns,
           x.interpolate_gauges);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, active_span& x) {
  return f(caf::meta::type_name("active_span"), x.start_ns, x.end_ns);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vm_activity& x) {
  return f(caf::meta::type_name("vm_activity"), x.vm_id, x.region, x.spans, x.totals);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage_gap& x) {
  return f(caf::meta::type_name("usage_gap"), x.vm_id, x.region, x.start_ns, x.end_ns,
           usage_sum_words{&x.interpolated_memory_bytes_seconds}, x.interpolated);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, billing_window& x) {
  return f(caf::meta::type_name("billing_window"), x.customer_id, x.totals, x.vms, x.gaps, x.cost);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, metald_sample& x) {
  return f(caf::meta::type_name("metald_sample"), x.timestamp_ns, x.cpu_time_nanos,
           x.memory_usage_bytes, x.disk_read_bytes, x.disk_write_bytes, x.network_rx_bytes,
           x.network_tx_bytes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, metald_session& x) {
  return f(caf::meta::type_name("metald_session"), x.vm_id, x.customer_id, x.start_ns,
           x.last_sample_ns);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, metald_op& x) {
  return f(caf::meta::type_name("metald_op"), x.kind, x.customer_id, x.region, x.vm_id, x.at_ns,
           x.until_ns, x.gap_after_ns, x.samples);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage_update& x) {
  return f(caf::meta::type_name("usage_update"), x.customer_id, x.snapshot, x.delta,
           x.month_to_date, x.sequence, x.as_of_ns, x.month_to_date_cost);
}

}  // namespace billing::model

namespace billing::storage {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stored_record& x) {
  return f(caf::meta::type_name("stored_record"), x.family, x.key, x.value);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, customer_records& x) {
  return f(caf::meta::type_name("customer_records"), x.customer_id, x.records);
}

}  // namespace billing::storage
