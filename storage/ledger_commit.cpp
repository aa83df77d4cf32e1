// The committer's write path: a group of write sets becomes one RocksDB
// WriteBatch, chained into the audit log, logged for replication, synced.
#include "storage/ledger_store_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

#include "model/calendar.hpp"
#include "storage/bytes.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace billing::storage {

status ledger_store::impl::add_to_batch(rocksdb::WriteBatch& batch, const write_set& writes,
                                        audit_chain::batch_chain& chain_after, std::string* logged,
                                        uint32_t* logged_count) {
  for (const auto& mutation : writes.mutations()) {
    if (mutation.family >= family_names.size()) {
      return {status_code::internal, fmt::format("no column family {}", mutation.family)};
    }
    auto* handle = db->handle(static_cast<family>(mutation.family));
    rocksdb::Status added;
    const std::string* key = &mutation.key;
    std::string audit_key;
    const bool audit = mutation.append_audit_sequence || mutation.chain_audit;
    if (mutation.merge) {
      added = batch.Merge(handle, mutation.key, mutation.value);
    } else if (mutation.erase) {
      added = batch.Delete(handle, mutation.key);
    } else if (mutation.chain_audit && is_stored(audit_family, mutation.key)) {
      continue;  // a snapshot's entry this node holds already
    } else if (mutation.chain_audit) {
      auto restored = restore_retracted(batch, mutation.key, mutation.value);
      if (!restored.ok()) return restored.error();
      if (!restored.value())
        added = chain_after.append(batch, handle, mutation.key, mutation.value);
    } else if (audit) {
      // Audit entries are chained in commit order, here where that order is made.
      if (mutation.append_audit_sequence) {
        audit_key = mutation.key;
        keys::append_audit_sequence(audit_key, chain_after.next_sequence());
        key = &audit_key;
      }
      added = chain_after.append(batch, handle, *key, mutation.value);
    } else {
      added = batch.Put(handle, mutation.key, mutation.value);
      if (mutation.family == meta_family &&
          mutation.key.starts_with(audit_chain::retracted_prefix)) {
        holds_retracted = true;
      } else if (mutation.family == replication_family &&
                 mutation.key.starts_with(replication_log::installing_tag)) {
        holds_installing = true;
      }
    }
    if (mutation.erase && mutation.family == replication_family &&
        mutation.key.starts_with(replication_log::installing_tag)) {
      holds_installing.reset();
    }
    if (!added.ok()) return from_rocksdb(added, "building the write batch");
    if (logged != nullptr) {
      replication_log::append_mutation(
          *logged, *logged_count,
          {mutation.family, mutation.merge, mutation.erase, audit, *key, mutation.value});
    }
  }
  return status::ok_status();
}

status ledger_store::impl::add_logged(rocksdb::WriteBatch& batch,
                                      const replication_log::logged_mutation& mutation,
                                      audit_chain::batch_chain& chain_after) {
  auto* handle = db->handle(static_cast<family>(mutation.family));
  rocksdb::Status added;
  if (mutation.merge) {
    added = batch.Merge(handle, mutation.key, mutation.value);
  } else if (mutation.erase) {
    added = batch.Delete(handle, mutation.key);
  } else if (mutation.audit) {
    auto linked = linked_already(mutation.key, mutation.value);
    if (!linked.ok()) return linked.error();
    if (linked.value()) {
      // The leader holds it: an unfinished install must not retract it.
      added = batch.Delete(db->handle(meta_family),
                           std::string(audit_chain::unconfirmed_prefix) + mutation.key);
      return from_rocksdb(added, "confirming an audit entry");
    }
    auto restored = restore_retracted(batch, mutation.key, mutation.value);
    if (!restored.ok()) return restored.error();
    if (!restored.value()) added = chain_after.append(batch, handle, mutation.key, mutation.value);
  } else {
    added = batch.Put(handle, mutation.key, mutation.value);
  }
  return from_rocksdb(added, "applying a replicated entry");
}

result<bool> ledger_store::impl::restore_retracted(rocksdb::WriteBatch& batch,
                                                   const std::string& key,
                                                   const std::string& value) {
  auto* meta = db->handle(meta_family);
  auto any = any_key_with_prefix(holds_retracted, meta_family, audit_chain::retracted_prefix);
  if (!any.ok() || !any.value()) return any;
  const std::string retracted_key = std::string(audit_chain::retracted_prefix) + key;
  auto retracted = holds_same_entry(meta_family, retracted_key, value, "retracted");
  if (!retracted.ok() || !retracted.value()) return retracted;
  auto moved = batch.Delete(meta, retracted_key);
  if (moved.ok()) moved = batch.Put(db->handle(audit_family), key, value);
  if (!moved.ok()) return from_rocksdb(moved, "restoring a retracted audit entry");
  return true;
}

result<bool> ledger_store::impl::holds_same_entry(family which, const std::string& key,
                                                  const std::string& value, std::string_view how) {
  std::string held;
  auto read = db->db().Get(rocksdb::ReadOptions{}, db->handle(which), key, &held);
  if (read.IsNotFound()) return false;
  if (!read.ok()) return from_rocksdb(read, "reading an audit entry");
  if (held != value) {
    // Keys name one entry (customer, time, the leader's sequence): two
    // contents under one key mean damage, and either would break the chain.
    return status{status_code::data_loss,
                  fmt::format("an audit entry from the shard's leader differs from the entry {} "
                              "here under the same key; the chain keeps the one here",
                              how)};
  }
  return true;
}

result<bool> ledger_store::impl::any_key_with_prefix(std::optional<bool>& known, family which,
                                                     std::string_view prefix) {
  if (known) return *known;
  std::unique_ptr<rocksdb::Iterator> it(
      db->db().NewIterator(rocksdb::ReadOptions{}, db->handle(which)));
  it->Seek(prefix);
  if (!it->status().ok()) return from_rocksdb(it->status(), "scanning for a marker");
  known = it->Valid() && it->key().starts_with(prefix);
  return *known;
}

result<bool> ledger_store::impl::linked_already(const std::string& key, const std::string& value) {
  auto unfinished =
      any_key_with_prefix(holds_installing, replication_family, replication_log::installing_tag);
  if (!unfinished.ok() || !unfinished.value()) return unfinished;
  return holds_same_entry(audit_family, key, value, "stored");
}

result<log_position> ledger_store::impl::position_of(uint32_t shard) {
  if (auto found = shard_positions.find(shard); found != shard_positions.end()) {
    return found->second;
  }
  std::string value;
  auto read = db->db().Get(rocksdb::ReadOptions{}, db->handle(replication_family),
                           replication_log::state_key(shard), &value);
  log_position position;
  if (read.ok()) {
    auto decoded = replication_log::decode_state(value);
    if (!decoded.ok()) return decoded.error();
    position = decoded.value();
  } else if (!read.IsNotFound()) {
    return from_rocksdb(read, "reading a shard's log position");
  }
  shard_positions[shard] = position;
  return position;
}

status ledger_store::impl::add_replication(rocksdb::WriteBatch& batch, const write_set& writes,
                                           std::string logged, uint32_t logged_count,
                                           log_position& position,
                                           audit_chain::batch_chain& chain_after,
                                           std::optional<log_entry>& entry) {
  using kind = write_set::replication_role::kind;
  const auto& role = writes.replication();
  auto* log = db->handle(replication_family);
  const uint64_t keep = std::max<uint64_t>(options.replication_log_entries, 1);
  auto append_entry = [&](uint64_t epoch, uint64_t seq, std::string_view mutations) {
    auto put = batch.Put(log, replication_log::log_key(role.shard, seq),
                         replication_log::encode_entry_value(epoch, mutations));
    if (put.ok() && seq > keep)
      put = batch.Delete(log, replication_log::log_key(role.shard, seq - keep));
    position = {epoch, seq};
    return from_rocksdb(put, "logging a replicated write");
  };
  if (role.what == kind::lead && logged_count > 0) {
    std::string mutations = replication_log::finish_mutations(logged_count, std::move(logged));
    if (auto put = append_entry(role.epoch, position.seq + 1, mutations); !put.ok()) return put;
    entry = log_entry{role.epoch, position.seq, std::move(mutations)};
  } else if (role.what == kind::follow) {
    for (const auto& next : role.entries) {
      if (next.seq != position.seq + 1 || next.epoch < position.epoch) {
        return {status_code::aborted,
                fmt::format("shard {}: entry {} (epoch {}) does not follow entry {} (epoch {})",
                            role.shard, next.seq, next.epoch, position.seq, position.epoch)};
      }
      auto mutations = replication_log::decode_mutations(next.mutations);
      if (!mutations.ok()) return mutations.error();
      for (const auto& mutation : mutations.value()) {
        if (auto added = add_logged(batch, mutation, chain_after); !added.ok()) {
          return added;
        }
      }
      if (auto put = append_entry(next.epoch, next.seq, next.mutations); !put.ok()) return put;
    }
  } else if (role.what == kind::reset) {
    position = role.reset_to;
  } else {
    return status::ok_status();  // a lead commit that logged nothing
  }
  return from_rocksdb(batch.Put(log, replication_log::state_key(role.shard),
                                replication_log::encode_state(position)),
                      "recording a shard's log position");
}

void ledger_store::impl::write_group(std::span<pending_commit> group) {
  // A flush or compaction failed since the last write (a full disk).
  if (!needs_reopen) {
    if (auto failed = background->take()) fail_writes(*failed);
  }
  if (needs_reopen) {
    // The disk failed before (I/O error, disk full) and reopening for writes
    // failed then: try again when due; the batch is built below on what the
    // reopened database holds. Until that works, nothing is acknowledged.
    // (Any commit retries, even an empty one: read_db asks for one.)
    if (status resumed = try_resume(); !resumed.ok()) {
      for (auto& commit : group) {
        const bool lead =
            commit.writes.replication().what == write_set::replication_role::kind::lead;
        commit.outcome = !commit.writes.encode_status().ok() ? commit.writes.encode_status()
                         : commit.writes.empty() && !lead    ? status::ok_status()
                                                             : resumed;
      }
      return;
    }
  }
  // The committer's one batch, emptied here: a fresh one grew its buffer by
  // doubling through every group, and each growth copied it into fresh
  // memory the kernel had to fault in (a tenth of the committer's time in one
  // profile of a fresh billingd; about 2% less CPU overall in A/B runs). An
  // outsized group's buffer is not kept.
  rocksdb::WriteBatch& batch = group_batch;
  if (batch.Data().capacity() > max_kept_batch_bytes) {
    batch = rocksdb::WriteBatch(reserved_batch_bytes);
  } else {
    batch.Clear();
  }
  std::vector<pending_commit*> in_batch;
  in_batch.reserve(group.size());
  audit_chain::batch_chain chain_after(chain, next_audit_sequence);
  // Replication: shard positions as this batch leaves them, the entries it
  // logs as leader, and the lead commits that wait for a majority.
  std::unordered_map<uint32_t, log_position> positions_after;
  std::vector<logged_entry> logged_entries;
  std::vector<std::pair<pending_commit*, majority_wait>> waiting;
  auto sink = replication.load();
  using kind = write_set::replication_role::kind;
  for (auto& commit : group) {
    const auto& role = commit.writes.replication();
    if (!commit.writes.encode_status().ok()) {
      commit.outcome = commit.writes.encode_status();
      continue;
    }
    log_position* position = nullptr;
    if (role.what != kind::none) {
      if (role.what == kind::lead && (!sink || !sink->leads(role.shard, role.epoch))) {
        commit.outcome = {status_code::unavailable,
                          fmt::format("this node does not lead shard {} at epoch {} (any more); "
                                      "retry",
                                      role.shard, role.epoch)};
        continue;
      }
      auto found = positions_after.find(role.shard);
      if (found == positions_after.end()) {
        auto loaded = position_of(role.shard);
        if (!loaded.ok()) {
          commit.outcome = loaded.error();
          continue;
        }
        found = positions_after.emplace(role.shard, loaded.value()).first;
      }
      position = &found->second;
    }
    if (commit.writes.empty()) {
      commit.outcome = status::ok_status();
      // Nothing new, but what it found stored (duplicates) counts only once
      // the shard's log as it is has a majority.
      if (role.what == kind::lead) {
        waiting.push_back({&commit, {role.shard, role.epoch, position->seq, nullptr}});
      }
      continue;
    }
    // A write_set that cannot be added leaves no trace in the batch and does
    // not affect the others.
    batch.SetSavePoint();
    const size_t chained_before = chain_after.chained();
    const log_position position_before = position ? *position : log_position{};
    std::string logged;
    uint32_t logged_count = 0;
    const bool lead = role.what == kind::lead;
    auto added = add_to_batch(batch, commit.writes, chain_after, lead ? &logged : nullptr,
                              lead ? &logged_count : nullptr);
    std::optional<log_entry> entry;
    if (added.ok() && position != nullptr) {
      added = add_replication(batch, commit.writes, std::move(logged), logged_count, *position,
                              chain_after, entry);
    }
    if (!added.ok()) {
      (void)batch.RollbackToSavePoint();
      chain_after.rollback_to(chained_before);
      if (position != nullptr) *position = position_before;
      commit.outcome = std::move(added);
      continue;
    }
    (void)batch.PopSavePoint();
    in_batch.push_back(&commit);
    if (lead) {
      waiting.push_back({&commit, {role.shard, role.epoch, position->seq, nullptr}});
      if (entry) logged_entries.push_back({role.shard, std::move(*entry)});
    }
  }
  if (in_batch.empty()) {
    hand_to_majority(sink, std::move(logged_entries), waiting);
    return;
  }
  {
    auto put = chain_after.finish(batch, db->handle(meta_family));
    if (!put.ok()) {
      for (auto* commit : in_batch) commit->outcome = from_rocksdb(put, "chaining the audit log");
      for (auto& wait : waiting) wait.first->outcome = from_rocksdb(put, "chaining the audit log");
      return;
    }
  }

  const auto write_started = std::chrono::steady_clock::now();
  const int64_t write_started_unix_ns = options.tracer ? observability::unix_now_ns() : 0;
  auto written = db->db().Write(write_options, &batch);
  if (options.tracer && write_options.sync) {
    last_sync = timed_interval{write_started_unix_ns, observability::unix_now_ns(), !written.ok()};
  }
  synced_writes.fetch_add(1);
  if (options.on_synced_write) {
    options.on_synced_write(std::chrono::steady_clock::now() - write_started);
  }
  auto outcome = from_rocksdb(written, fmt::format("committing {} write sets", in_batch.size()));
  if (outcome.ok()) {
    next_audit_sequence = chain_after.next_sequence();
    chain = chain_after.chain();
    for (const auto& [shard, position] : positions_after) shard_positions[shard] = position;
  } else {
    // Reopen before anyone learns of the failure. The failed write is not in
    // the old database's memtables but may be in its WAL, which the reopen
    // replays (also a read-only one): a caller that retries must judge its
    // retry against what the reopened database holds, or a replayed write
    // and its retry would both count (rollup totals add up). If reopening
    // fails altogether, readers get unavailable until a later commit
    // reopens it.
    fail_writes(outcome);
    if (pause.paused()) outcome = pause.refusal();
  }
  for (auto* commit : in_batch) commit->outcome = outcome;
  if (!outcome.ok()) {
    // Nothing was logged: the lead commits fail here, like every other.
    for (auto& wait : waiting) wait.first->outcome = outcome;
    return;
  }
  hand_to_majority(sink, std::move(logged_entries), waiting);
}

void ledger_store::impl::hand_to_majority(
    const std::shared_ptr<replication_sink>& sink, std::vector<logged_entry> entries,
    std::vector<std::pair<pending_commit*, majority_wait>>& waiting) {
  if (!sink || (entries.empty() && waiting.empty())) return;
  std::vector<majority_wait> waits;
  waits.reserve(waiting.size());
  for (auto& [commit, wait] : waiting) {
    // The sink completes it now (once a majority holds the log up to its
    // entry); the committer completes the others as usual.
    wait.on_done = std::move(commit->on_done);
    commit->on_done = nullptr;
    waits.push_back(std::move(wait));
  }
  sink->committed(std::move(entries), std::move(waits));
}

}  // namespace billing::storage
