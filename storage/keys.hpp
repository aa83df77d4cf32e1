// Column families and key layouts of the ledger (byte by byte in
// storage/README.md). Keys start with the customer so that each customer's
// data is one contiguous range, and timestamps are big-endian with the sign
// bit flipped so that byte order is time order, also before 1970.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/metald.hpp"
#include "model/rollup.hpp"
#include "model/status.hpp"
#include "model/usage_window.hpp"

namespace billing::storage {

// Index of a column family; write_set::mutation::family holds one of these.
enum family : uint32_t {
  meta_family = 0,  // RocksDB's "default" family: schema version
  windows_family = 1,
  dedup_family = 2,
  audit_family = 3,
  rollups_family = 4,
  plans_family = 5,     // effective-dated price plan versions (storage/billing_records)
  invoices_family = 6,  // finalized invoices, immutable
  // metald (issue 8): per-VM watermark and session, vm -> customer, instances.
  vm_state_family = 7,
  vm_index_family = 8,
  metald_instances_family = 9,
  metald_gaps_family = 10,
  // Cluster (issue 5): parts held for an unreachable owner node (hinted handoff).
  handoff_family = 11,
  // Replication (issue 16): each shard's log and position (storage/replication_log).
  replication_family = 12,
};
// New families go at the end; RocksDB creates missing ones at open and
// finds existing ones by name, so these indices are only our own order.
inline constexpr std::array<std::string_view, 13> family_names = {
    "default",     "windows",  "dedup",    "audit",    "rollups",
    "plans",       "invoices", "vm_state", "vm_index", "metald_instances",
    "metald_gaps", "handoff",  "replication"};

namespace keys {

// A length-prefixed key part has a 1-byte length. Ids are validated to at most
// 128 bytes elsewhere; anything longer than a byte can count is refused here
// rather than silently truncated into another id's key.
inline constexpr size_t max_part_bytes = 255;

// The meta family's key holding the schema version.
inline constexpr std::string_view schema_version_key = "schema_version";

// Appends the timestamp as 8 big-endian bytes of (ns XOR 2^63).
void append_timestamp(std::string& out, int64_t ns);
int64_t timestamp_from_ordered(uint64_t ordered);

// Appends 1-byte length then the bytes; invalid_argument if too long.
status append_part(std::string& out, std::string_view field, std::string_view part);

// lp(customer_id): the prefix of every key of that customer, in every family.
result<std::string> customer_prefix(std::string_view customer_id);

// The smallest key greater than every key starting with `prefix`, for use as
// an exclusive upper bound; nullopt if there is none (the prefix is all 0xff,
// so every greater key starts with it and no bound is needed).
std::optional<std::string> prefix_successor(std::string_view prefix);

// windows: lp(customer) | ts(window_start) | lp(region) | lp(vm_id) | ts(window_end).
// It holds the whole identity, so it is also the dedup index's key.
result<std::string> window_key(std::string_view customer_id, int64_t window_start_ns,
                               std::string_view region, std::string_view vm_id,
                               int64_t window_end_ns);
result<std::string> window_key(const model::window_identity& id);
result<std::string> window_key(const model::usage_window& window);
// The windows-family key bound for a scan starting (or ending) at `ns`.
result<std::string> window_scan_bound(std::string_view customer_id, int64_t ns);
// Parses a windows-family key; data_loss if it is not exactly one.
result<model::window_identity> decode_window_key(std::string_view key);
// The same, as views into `key` (nothing copied).
result<model::window_identity_view> parse_window_key(std::string_view key);

// dedup (legacy, no longer written; retention still drops old entries):
// lp(customer) | lp(region) | lp(vm_id) | ts(window_start) | ts(window_end)
result<std::string> dedup_key(const model::window_identity& id);

// rollups: lp(customer) | u8(granularity) | ts(bucket_start) | lp(region) | lp(vm_id)
result<std::string> rollup_key(std::string_view customer_id, const model::rollup_id& id);
// The rollups-family key bound for a scan of `grain` buckets starting at `ns`.
result<std::string> rollup_scan_bound(std::string_view customer_id, model::granularity grain,
                                      int64_t ns);
// Parses a rollups-family key (without its customer); data_loss if it is not exactly one.
result<model::rollup_id> decode_rollup_key(std::string_view key);

// The window_start of a windows-family or dedup-family key, or nullopt when
// the key is not one (retention never drops what it cannot read).
std::optional<int64_t> window_start_of_window_key(std::string_view key);
std::optional<int64_t> window_start_of_dedup_key(std::string_view key);

// audit: lp(customer) | ts(recorded_at) | u64 sequence. The sequence is
// appended by the store at commit time (see ledger_store.cpp).
result<std::string> audit_key_without_sequence(std::string_view customer_id,
                                               int64_t recorded_at_ns);
void append_audit_sequence(std::string& key, uint64_t sequence);

// vm_state: lp(customer) | lp(vm_id)
result<std::string> vm_state_key(std::string_view customer_id, std::string_view vm_id);
// vm_index: lp(vm_id) (node-wide: NotifyVmStopped names no customer)
result<std::string> vm_index_key(std::string_view vm_id);
// metald_instances: lp(instance_id)
result<std::string> metald_instance_key(std::string_view instance_id);
// metald_gaps: lp(customer) | ts(gap_start) | lp(vm_id) | ts(gap_end)
result<std::string> metald_gap_key(std::string_view customer_id, std::string_view vm_id,
                                   const model::metald_gap& gap);
// Parses a metald_gaps key into (vm_id, gap); data_loss if it is not exactly one.
result<std::pair<std::string, model::metald_gap>> decode_metald_gap_key(std::string_view key);

// handoff: lp(target node id) | u64 sequence (big-endian), so that a node's
// held parts for one owner are scanned oldest first.
result<std::string> handoff_key(std::string_view node_id, uint64_t sequence);
result<std::string> handoff_prefix(std::string_view node_id);
// The sequence at the end of a handoff key; nullopt if it is not one.
std::optional<uint64_t> handoff_sequence(std::string_view key);
// The target node id at the start of a handoff key; nullopt if it is not one.
std::optional<std::string> handoff_node(std::string_view key);

}  // namespace keys
}  // namespace billing::storage
