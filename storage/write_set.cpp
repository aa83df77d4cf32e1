#include "storage/ledger_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

#include "model/calendar.hpp"
#include "storage/bytes.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace billing::storage {

void write_set::put_window(const model::usage_window& window) {
  if (!encode_status_.ok()) return;
  // The windows key is the window's whole identity: the dedup lookups read it
  // (find_stored), so a window costs one key, not a window and a dedup entry.
  auto key = keys::window_key(window);
  if (!key) {
    encode_status_ = key.error();
    return;
  }
  mutations_.push_back(
      {windows_family, std::move(*key), codec::encode_window_value(window), false});
}

void write_set::put_audit(std::string_view customer_id, int64_t recorded_at_ns, std::string value) {
  if (!encode_status_.ok()) return;
  auto key = keys::audit_key_without_sequence(customer_id, recorded_at_ns);
  if (!key) {
    encode_status_ = key.error();
    return;
  }
  mutations_.push_back({audit_family, std::move(*key), std::move(value), true});
}

void write_set::put_conflict(const conflict_record& record) {
  put_audit(record.attempted.customer_id, model::unix_now_ns(), codec::encode_conflict(record));
}

void write_set::put_ingest_record(const ingest_record& record) {
  put_audit(record.customer_id, model::unix_now_ns(), codec::encode_ingest_record(record));
}

void write_set::merge_rollups(std::string_view customer_id,
                              const model::rollup_accumulator& rollups) {
  for (const auto& [id, value] : rollups.buckets()) {
    if (!encode_status_.ok()) return;
    auto key = keys::rollup_key(customer_id, id);
    if (!key) {
      encode_status_ = key.error();
      return;
    }
    mutations_.push_back(
        {rollups_family, std::move(*key), codec::encode_rollup_value(value), false, true});
  }
}

void write_set::put_rollup(std::string_view customer_id, const model::rollup_id& id,
                           const model::rollup_value& total) {
  put(rollups_family, keys::rollup_key(customer_id, id), codec::encode_rollup_value(total));
}

void write_set::put(uint32_t family, result<std::string> key, std::string value) {
  if (!encode_status_.ok()) return;
  if (!key) {
    encode_status_ = key.error();
    return;
  }
  mutations_.push_back({family, std::move(*key), std::move(value), false});
}

void write_set::put_handoff(std::string_view node_id, uint64_t sequence, std::string value) {
  put(handoff_family, keys::handoff_key(node_id, sequence), std::move(value));
}

void write_set::erase_handoff(std::string_view node_id, uint64_t sequence) {
  const size_t before = mutations_.size();
  put(handoff_family, keys::handoff_key(node_id, sequence), {});
  if (mutations_.size() > before) mutations_.back().erase = true;
}

void write_set::replicate_as_leader(uint32_t shard, uint64_t epoch) {
  replication_.what = replication_role::kind::lead;
  replication_.shard = shard;
  replication_.epoch = epoch;
}

void write_set::apply_as_follower(uint32_t shard, std::vector<log_entry> entries) {
  replication_.what = replication_role::kind::follow;
  replication_.shard = shard;
  replication_.entries = std::move(entries);
}

void write_set::reset_shard_log(uint32_t shard, log_position position) {
  replication_.what = replication_role::kind::reset;
  replication_.shard = shard;
  replication_.reset_to = position;
}

void write_set::mark_unsynced(uint32_t shard) {
  put_record({replication_family, replication_log::unsynced_key(shard), {}});
}

void write_set::mark_synced(uint32_t shard) {
  erase_record(replication_family, replication_log::unsynced_key(shard));
}

void write_set::mark_installing(uint32_t shard) {
  put_record({replication_family, replication_log::installing_key(shard), {}});
}

void write_set::mark_installed(uint32_t shard) {
  erase_record(replication_family, replication_log::installing_key(shard));
}

void write_set::mark_unsynced_pending() {
  put_record({replication_family, std::string(replication_log::unsynced_pending_key), {}});
}

void write_set::clear_unsynced_pending() {
  erase_record(replication_family, std::string(replication_log::unsynced_pending_key));
}

void write_set::put_chained_audit(std::string key, std::string value) {
  mutation audit{audit_family, std::move(key), std::move(value), false};
  audit.chain_audit = true;
  mutations_.push_back(std::move(audit));
}

void write_set::put_record(const stored_record& record) {
  mutations_.push_back({record.family, record.key, record.value, false});
}

void write_set::erase_record(uint32_t which, std::string key) {
  mutation erased{which, std::move(key), {}, false};
  erased.erase = true;
  mutations_.push_back(std::move(erased));
}

void write_set::put_vm_state(std::string_view customer_id, std::string_view vm_id,
                             const model::vm_state& state) {
  put(vm_state_family, keys::vm_state_key(customer_id, vm_id), codec::encode_vm_state(state));
  put(vm_index_family, keys::vm_index_key(vm_id), codec::encode_vm_index(customer_id));
}

void write_set::put_metald_gap(std::string_view customer_id, std::string_view vm_id,
                               std::string_view region, const model::metald_gap& gap) {
  put(metald_gaps_family, keys::metald_gap_key(customer_id, vm_id, gap),
      codec::encode_metald_gap(region));
}

void write_set::put_metald_instance(std::string_view instance_id,
                                    const model::metald_instance& instance) {
  put(metald_instances_family, keys::metald_instance_key(instance_id),
      codec::encode_metald_instance(instance));
}

}  // namespace billing::storage
