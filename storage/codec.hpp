// Value encodings of the ledger (byte by byte in storage/README.md). Every
// value starts with a 1-byte format version so that a later format can be
// told apart; decoding never trusts its input and reports data_loss instead.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "model/metald.hpp"
#include "model/rollup.hpp"
#include "model/status.hpp"
#include "model/usage_window.hpp"
#include "storage/ledger_store.hpp"

namespace billing::storage::codec {

inline constexpr uint8_t window_value_format = 1;
inline constexpr uint8_t conflict_format = 1;
// Format 2 added longest_window; format 1 values still decode (length unknown).
// 3: sums as 128-bit varints (1 and 2: uint64 sums, still read).
inline constexpr uint8_t rollup_value_format = 3;
// Audit values start with their format byte, which also tells their kind.
inline constexpr uint8_t ingest_record_format = 2;
inline constexpr uint8_t vm_state_format = 2;
// Format 2 added the learned cadence and the newest sample's time
// (vm_state::cadence_ns, last_sample_ns); format 1 values are still read.
inline constexpr uint8_t vm_state_format_without_cadence = 1;
inline constexpr uint8_t vm_index_format = 1;
inline constexpr uint8_t metald_instance_format = 1;
inline constexpr uint8_t metald_gap_format = 1;

// The schema of the whole database, stored in the meta family. Bump it when a
// key or value layout changes incompatibly.
// Version 2 added the rollups (rebuilt from the raw windows when a version 1
// ledger is opened).
inline constexpr uint32_t current_schema_version = 2;

// windows value: version | every field not already in the windows key.
std::string encode_window_value(const model::usage_window& window);
result<model::usage_window> decode_window_value(const model::window_identity& id,
                                                std::string_view value);
// memory_bytes_used alone, with the same checks as decode_window_value.
result<uint64_t> decode_window_memory_used(std::string_view value);

// rollups value: version | the 11 usage_totals fields (u64) | first_active (i64) |
// last_active (i64) | longest_window (i64, format 2). Combined by
// storage/rollup_merge's merge operator.
std::string encode_rollup_value(const model::rollup_value& value);
result<model::rollup_value> decode_rollup_value(std::string_view value);

// audit value of a refused conflicting re-send.
std::string encode_conflict(const conflict_record& record);
result<conflict_record> decode_conflict(std::string_view value);

// audit value of an ingest batch's part: version | batch_id | instance_id |
// region | received_at | caller | accepted u32 | duplicate u32 | rejected u32.
std::string encode_ingest_record(const ingest_record& record);
// The customer id is not in the value (it is the key's prefix).
result<ingest_record> decode_ingest_record(std::string_view value);

// vm_state value: version | region (u32 length + bytes) | watermark (i64) |
// the watermark sample's 6 counters and gauge (u64: cpu, memory, disk read,
// disk write, net rx, net tx) | u8 flags (1 gauge_known, 2 end_by_timeout) |
// memory_remainder (u64) | session_start (i64) | session_end (i64).
std::string encode_vm_state(const model::vm_state& state);
result<model::vm_state> decode_vm_state(std::string_view value);

// vm_index value: version | customer_id (u32 length + bytes).
std::string encode_vm_index(std::string_view customer_id);
result<std::string> decode_vm_index(std::string_view value);

// metald_instances value: version | last_heartbeat (i64) | u8 timed_out |
// u32 count | count x (u32 length + vm_id).
std::string encode_metald_instance(const model::metald_instance& instance);
result<model::metald_instance> decode_metald_instance(std::string_view value);

// metald_gaps value: version | region (u32 length + bytes).
std::string encode_metald_gap(std::string_view region);
result<std::string> decode_metald_gap(std::string_view value);

std::string encode_schema_version(uint32_t version);
result<uint32_t> decode_schema_version(std::string_view value);

}  // namespace billing::storage::codec
