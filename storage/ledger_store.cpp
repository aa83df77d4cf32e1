#include "storage/ledger_store.hpp"

#include <fmt/format.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>
#include <utility>

#include "model/calendar.hpp"
#include "observability/log.hpp"
#include "storage/audit_chain.hpp"
#include "storage/background_errors.hpp"
#include "storage/bytes.hpp"
#include "storage/codec.hpp"
#include "storage/commit_tracing.hpp"
#include "storage/database.hpp"
#include "storage/group_committer.hpp"
#include "storage/keys.hpp"

namespace billing::storage {

// ---- write_set ----

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

namespace {

// Visits the entries of `family` from `lower` up to `upper` (exclusive; none:
// to the end) in key order until `visit` answers false or fails; `what`
// names the scan in errors.
status iterate_range(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family, const rocksdb::Snapshot* snapshot,
    std::string_view lower, const std::optional<std::string>& upper, std::string_view what,
    const std::function<result<bool>(std::string_view key, std::string_view value)>& visit) {
  std::optional<rocksdb::Slice> upper_bound;
  rocksdb::ReadOptions read_options;
  if (upper) {
    upper_bound.emplace(*upper);
    read_options.iterate_upper_bound = &*upper_bound;
  }
  read_options.snapshot = snapshot;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read_options, family));
  for (it->Seek(rocksdb::Slice(lower.data(), lower.size())); it->Valid(); it->Next()) {
    auto go_on = visit(it->key().ToStringView(), it->value().ToStringView());
    if (!go_on.ok()) return go_on.error();
    if (!go_on.value()) return status::ok_status();
  }
  return from_rocksdb(it->status(), what);
}

}  // namespace

// ---- ledger_store ----

struct ledger_store::impl {
  // `paused_by` is set when the store could only be opened for reading (a
  // full disk at start).
  impl(std::unique_ptr<database> opened, store_options opened_with, audit_chain::head chain_head,
       std::shared_ptr<background_errors> errors, const std::optional<status>& paused_by)
      : db(std::move(opened)),
        options(std::move(opened_with)),
        write_options(make_write_options(options.sync_writes)),
        // RocksDB's sequence number only grows, also across restarts, and
        // grows by at least one per put; audit sequences start above it and
        // advance only for committed puts, so they never repeat.
        next_audit_sequence(db->db().GetLatestSequenceNumber() + 1),
        chain(chain_head),
        background(std::move(errors)),
        pause(options.resume) {
    if (paused_by) {
      needs_reopen = true;
      pause.pause(*paused_by, write_pause::clock::now());
    }
    committer.emplace([this](std::span<pending_commit> group) { write_traced_group(group); },
                      [this] { on_idle(); }, options.resume.first_interval);
  }

  ~impl() {
    // Drain and stop before the database closes; member order would do the
    // same, but this must not depend on someone reordering the members.
    committer.reset();
  }

  static rocksdb::WriteOptions make_write_options(bool sync_writes) {
    rocksdb::WriteOptions options;
    options.sync = sync_writes;
    options.disableWAL = false;  // the WAL is what makes a commit durable
    return options;
  }
  void write_group(std::span<pending_commit> group);
  // write_group, and the spans of the requests it served when tracing.
  void write_traced_group(std::span<pending_commit> group) {
    if (!options.tracer || !has_traces(group)) {
      write_group(group);
      return;
    }
    commit_group_timing timing{++traced_groups, observability::unix_now_ns(), 0, {}};
    last_sync.reset();
    write_group(group);
    timing.ended_unix_ns = observability::unix_now_ns();
    timing.sync = last_sync;
    record_commit_spans(*options.tracer, group, timing);
  }
  // `logged` (lead commits): the mutations as written, for the shard's log.
  status add_to_batch(rocksdb::WriteBatch& batch, const write_set& writes,
                      audit_chain::batch_chain& chain_after, std::string* logged = nullptr,
                      uint32_t* logged_count = nullptr);
  // One logged mutation of a leader's entry, applied by a follower.
  status add_logged(rocksdb::WriteBatch& batch, const replication_log::logged_mutation& mutation,
                    audit_chain::batch_chain& chain_after);
  // The replication part of one commit (storage/replication_log.hpp): its
  // log entry or the leader's entries it applies, and the shard's position
  // after it in `position`. Fills `entry` for a lead commit that logged one.
  status add_replication(rocksdb::WriteBatch& batch, const write_set& writes, std::string logged,
                         uint32_t logged_count, log_position& position,
                         audit_chain::batch_chain& chain_after, std::optional<log_entry>& entry);
  // Hands the lead commits of a group (durable here) to the sink, which
  // completes them once a majority has them.
  void hand_to_majority(const std::shared_ptr<replication_sink>& sink,
                        std::vector<logged_entry> entries,
                        std::vector<std::pair<pending_commit*, majority_wait>>& waiting);
  // An audit entry a snapshot install retracted here (audit_chain.hpp) that
  // arrives again, in a later snapshot or in the log of a leader that held
  // it: it is linked in this node's chain already, so it moves back into the
  // audit family unchanged instead of being linked a second time (the chain
  // would then link one stored entry twice and no longer verify). true when
  // it was retracted and is restored by `batch` (committer thread).
  result<bool> restore_retracted(rocksdb::WriteBatch& batch, const std::string& key,
                                 const std::string& value);
  // Whether a follower's log entry brings an audit entry this node holds
  // already. That can only happen while a shard's install has not finished
  // (its position was reset before its records were erased; the replicator
  // then takes only snapshots), so only then is it looked up: otherwise the
  // entry would be linked a second time and the chain no longer verify. An
  // entry changed under its key is data_loss (committer thread).
  result<bool> linked_already(const std::string& key, const std::string& value);
  // Whether `which` holds a key starting with `prefix`: `known` if set, else
  // looked up once and kept there (committer thread).
  result<bool> any_key_with_prefix(std::optional<bool>& known, family which,
                                   std::string_view prefix);
  // Whether `which` holds `key` (an audit entry, as `how` it is held here)
  // with `value`; data_loss when with another value (committer thread).
  result<bool> holds_same_entry(family which, const std::string& key, const std::string& value,
                                std::string_view how);
  // Whether `key` is stored in `which` (committer thread).
  bool is_stored(family which, const std::string& key) {
    std::string ignored;
    return db->db().Get(rocksdb::ReadOptions{}, db->handle(which), key, &ignored).ok();
  }
  // The durable position of `shard`'s log (committer thread: cached).
  result<log_position> position_of(uint32_t shard);
  // Replaces the database after a storage error: opened for writes, or when
  // that fails (or `for_writes` is false), for reads only.
  status reopen(bool for_writes);
  // A write or background job failed with `error`: writes pause until a
  // reopen for writes works (at once, unless the disk is full).
  void fail_writes(const status& error);
  // While paused: reopens for writes when due (write_pause), else the refusal.
  status try_resume();
  // On the committer thread when no commit came for a while.
  void on_idle();
  std::optional<uint64_t> free_space() const;
  // Calls `visit(key without the prefix, value)` for every key of `which`
  // starting with `prefix`, in key order, until it fails or answers false.
  status scan_prefix(
      family which, const std::string& prefix, std::string_view context,
      const std::function<result<bool>(std::string_view rest, std::string_view value)>& visit);
  // The value under `key` in `which`, nullopt when absent.
  result<std::optional<std::string>> get(family which, std::string_view key,
                                         std::string_view context);

  // Runs `read` on the open database. While it is being reopened after a
  // write error, readers wait; if it could not be reopened, unavailable.
  template <class Read>
  auto read_db(Read&& read) {
    std::shared_lock lock(db_mutex);
    using answer = decltype(read(*db));
    if (!db) {
      // Reopening failed after a write error: an empty commit makes the
      // committer try again, so reads recover without waiting for a write.
      if (committer) committer->submit(write_set{}, nullptr);
      return answer{status{status_code::unavailable,
                           "the ledger is closed after a storage error; it is reopened on the "
                           "next write"}};
    }
    return read(*db);
  }

  // Readers (any thread) hold db_mutex shared; only the committer thread
  // replaces `db`, and only under the exclusive lock. The committer itself
  // uses `db` without the lock, since nobody else replaces it.
  std::shared_mutex db_mutex;
  std::unique_ptr<database> db;
  const store_options options;  // to reopen
  rocksdb::WriteOptions write_options;
  std::atomic<uint64_t> synced_writes{0};
  uint64_t next_audit_sequence;  // committer thread only
  audit_chain::head chain;       // committer thread only: the durable chain head
  // Whether meta holds retracted audit entries (committer thread only; read
  // once when first needed, so that a follower's apply skips the lookup on a
  // store that never retracted one).
  std::optional<bool> holds_retracted;
  // Whether a snapshot install of some shard has not finished here
  // ("installing/", replication_log.hpp), read when first needed and again
  // after an install finishes (committer thread only).
  std::optional<bool> holds_installing;
  // Set when a write failed: RocksDB then refuses every write (background
  // error) until the database is reopened for writes (while that fails, `db`
  // is open read-only, or null). Committer thread only.
  bool needs_reopen = false;
  std::shared_ptr<background_errors> background;  // the listener of every open
  write_pause pause;
  std::mutex backup_mutex;  // one BackupEngine per directory at a time
  // Tracing (committer thread only): groups traced so far, and the timing of
  // the last synced write.
  uint64_t traced_groups = 0;
  std::optional<timed_interval> last_sync;
  // Replication: the sink lead commits report to, and each shard's durable
  // log position (committer thread only; reloaded after a reopen).
  std::atomic<std::shared_ptr<replication_sink>> replication;
  std::unordered_map<uint32_t, log_position> shard_positions;
  // write_group's batch, reused (committer thread only).
  static constexpr size_t reserved_batch_bytes = size_t{1} << 20;
  static constexpr size_t max_kept_batch_bytes = size_t{16} << 20;
  rocksdb::WriteBatch group_batch{reserved_batch_bytes};
  std::optional<group_committer> committer;
};

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

void ledger_store::impl::fail_writes(const status& error) {
  needs_reopen = true;
  pause.pause(error, write_pause::clock::now());
  observability::log_warn("ledger writes paused: {}", error.message());
  // On a full disk a reopen for writes would fail (its recovery flushes the
  // WAL into an SST) and only spend the disk's last bytes: read-only until
  // space is freed.
  const bool disk_full = pause.health().disk_full;
  const status reopened = reopen(!disk_full);
  if (disk_full) return;
  if (reopened.ok()) {
    pause.resume(write_pause::clock::now());
    observability::log_info("ledger writes resumed: reopened after the error");
  } else {
    pause.attempt_failed(reopened, write_pause::clock::now());
  }
}

status ledger_store::impl::try_resume() {
  const auto now = write_pause::clock::now();
  if (!pause.due(now, free_space().value_or(UINT64_MAX))) return pause.refusal();
  if (status reopened = reopen(true); !reopened.ok()) {
    pause.attempt_failed(reopened, now);
    observability::log_warn("ledger writes still paused: {}", reopened.message());
    return pause.refusal();
  }
  pause.resume(now);
  observability::log_info("ledger writes resumed: the ledger is open for writes again");
  return status::ok_status();
}

void ledger_store::impl::on_idle() {
  if (!needs_reopen) {
    if (auto failed = background->take()) fail_writes(*failed);
  } else {
    (void)try_resume();
  }
}

std::optional<uint64_t> ledger_store::impl::free_space() const {
  rocksdb::Env* env = options.env ? options.env.get() : rocksdb::Env::Default();
  uint64_t free = 0;
  if (!env->GetFreeSpace(options.data_dir, &free).ok()) return std::nullopt;
  return free;
}

// RocksDB 7.8 cannot leave the error state of a failed WAL write in-process:
// DB::Resume() reports success or the old error, but the WAL writer keeps its
// error and every later write fails (facebook/rocksdb#11643). Closing and
// reopening starts a new WAL. The failed write may or may not be in the old
// WAL (an append can reach the disk before its sync fails); replay decides,
// which is safe because it was never acknowledged: a retry finds it as a
// duplicate. The audit chain head and sequence are re-read for the same
// reason.
status ledger_store::impl::reopen(bool for_writes) {
  std::unique_lock exclusive(db_mutex);
  if (db) db->skip_flush_on_close();
  db.reset();
  (void)background->take();  // the closed database's
  auto opened = database::open(options, {.read_only = !for_writes, .listener = background});
  status failed;
  if (!opened.ok()) {
    failed = {opened.error().code() == status_code::resource_exhausted
                  ? status_code::resource_exhausted
                  : status_code::unavailable,
              fmt::format("the ledger could not be reopened {}after a storage error: {}",
                          for_writes ? "for writes " : "", opened.error().message())};
    if (!for_writes) return failed;
    // Reads go on from what is stored (the same WAL replayed in memory).
    opened = database::open(options, {.read_only = true, .listener = background});
    if (!opened.ok()) return failed;
  }
  auto head = audit_chain::load_head((*opened)->db(), (*opened)->handle(meta_family));
  if (!head.ok()) return head.error();
  db = std::move(opened).value();
  chain = head.value();
  shard_positions.clear();  // read again from what the reopened database holds
  holds_retracted.reset();
  holds_installing.reset();
  next_audit_sequence = std::max(next_audit_sequence, db->db().GetLatestSequenceNumber() + 1);
  if (!failed.ok()) return failed;
  if (for_writes) needs_reopen = false;
  return status::ok_status();
}

result<std::optional<std::string>> ledger_store::impl::get(family which, std::string_view key,
                                                           std::string_view context) {
  std::string value;
  bool present = false;
  status read = read_db([&](database& opened) {
    auto found = opened.db().Get(rocksdb::ReadOptions{}, opened.handle(which),
                                 rocksdb::Slice(key.data(), key.size()), &value);
    if (found.IsNotFound()) return status::ok_status();
    present = found.ok();
    return from_rocksdb(found, context);
  });
  if (!read.ok()) return read;
  return present ? std::optional<std::string>{std::move(value)} : std::nullopt;
}

status ledger_store::impl::scan_prefix(
    family which, const std::string& prefix, std::string_view context,
    const std::function<result<bool>(std::string_view rest, std::string_view value)>& visit) {
  return read_db([&](database& opened) {
    return iterate_range(opened.db(), opened.handle(which), nullptr, prefix,
                         keys::prefix_successor(prefix), context,
                         [&](std::string_view key, std::string_view value) {
                           return visit(key.substr(prefix.size()), value);
                         });
  });
}

ledger_store::ledger_store(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}

ledger_store::~ledger_store() = default;

bool ledger_store::exists(const std::string& data_dir) {
  std::error_code ignored;
  // RocksDB writes CURRENT last when it creates a database.
  return std::filesystem::exists(std::filesystem::path(data_dir) / "CURRENT", ignored);
}

result<std::shared_ptr<ledger_store>> ledger_store::open(const store_options& options) {
  auto errors = std::make_shared<background_errors>();
  auto opened = database::open(options, {.listener = errors});
  std::optional<status> paused_by;
  if (!opened && opened.error().code() == status_code::resource_exhausted) {
    // A full disk: serve reads and take writes once space is freed.
    auto readable = database::open(options, {.read_only = true, .listener = errors});
    if (!readable) return opened.error();
    observability::log_warn("the ledger is open read-only: {}", opened.error().message());
    paused_by = opened.error();
    opened = std::move(readable);
  }
  if (!opened) return opened.error();
  auto chain_head = audit_chain::load_head((*opened)->db(), (*opened)->handle(meta_family));
  if (!chain_head.ok()) return chain_head.error();
  auto state = std::make_unique<impl>(std::move(*opened), options, chain_head.value(),
                                      std::move(errors), paused_by);
  // The constructor is private, so make_shared cannot reach it.
  return std::shared_ptr<ledger_store>(new ledger_store(std::move(state)));
}

void ledger_store::set_replication_sink(std::shared_ptr<replication_sink> sink) {
  impl_->replication.store(std::move(sink));
}

result<log_position> ledger_store::shard_position(uint32_t shard, const snapshot_view* at) const {
  auto value = get(replication_family, replication_log::state_key(shard), at);
  if (!value.ok()) return value.error();
  if (!value.value()) return log_position{};
  return replication_log::decode_state(*value.value());
}

result<std::vector<log_entry>> ledger_store::read_log(uint32_t shard, uint64_t from_seq,
                                                      size_t max_entries, size_t max_bytes) const {
  std::vector<log_entry> entries;
  size_t bytes = 0;
  status failed;
  const std::string prefix = replication_log::log_prefix(shard);
  auto scanned =
      scan_range(replication_family, replication_log::log_key(shard, from_seq),
                 keys::prefix_successor(prefix), [&](std::string_view key, std::string_view value) {
                   auto seq = replication_log::log_sequence(key, shard);
                   if (!seq) return true;
                   auto entry = replication_log::decode_entry_value(*seq, value);
                   if (!entry.ok()) {
                     failed = entry.error();
                     return false;
                   }
                   bytes += entry.value().mutations.size();
                   entries.push_back(std::move(entry).value());
                   return entries.size() < max_entries && bytes < max_bytes;
                 });
  if (!scanned.ok()) return scanned;
  if (!failed.ok()) return failed;
  return entries;
}

void ledger_store::commit(write_set writes, std::function<void(status)> on_done) {
  impl_->committer->submit(std::move(writes), std::move(on_done));
}

result<backup_info> ledger_store::create_backup(const std::string& backup_dir) {
  std::unique_lock running(impl_->backup_mutex, std::try_to_lock);
  if (!running.owns_lock()) {
    return status{status_code::aborted, "another backup is running; retry when it has finished"};
  }
  return impl_->read_db([&](database& db) { return back_up(db.db(), backup_dir); });
}

write_health ledger_store::health() const {
  return impl_->pause.health();
}

uint64_t ledger_store::free_bytes() const {
  return impl_->free_space().value_or(0);
}

commit_stats ledger_store::stats() const {
  commit_stats stats{impl_->committer->commits_requested(), impl_->synced_writes.load()};
  (void)impl_->read_db([&](database& db) {
    auto property = [&](rocksdb::ColumnFamilyHandle* family, const rocksdb::Slice& name) {
      uint64_t value = 0;
      return db.db().GetIntProperty(family, name, &value) ? value : 0;
    };
    for (uint32_t which = 0; which < family_names.size(); ++which) {
      auto* handle = db.handle(static_cast<family>(which));
      stats.sst_bytes += property(handle, rocksdb::DB::Properties::kLiveSstFilesSize);
      stats.memtable_bytes += property(handle, rocksdb::DB::Properties::kCurSizeAllMemTables);
    }
    stats.block_cache_bytes =
        property(db.handle(meta_family), rocksdb::DB::Properties::kBlockCacheUsage);
    stats.estimated_windows =
        property(db.handle(windows_family), rocksdb::DB::Properties::kEstimateNumKeys);
    return status::ok_status();
  });
  return stats;
}

template <class T, class Decode>
result<std::vector<std::optional<T>>> ledger_store::multi_get(uint32_t which,
                                                              const std::vector<std::string>& keys,
                                                              std::string_view context,
                                                              Decode&& decode) const {
  std::vector<std::optional<T>> found;
  if (keys.empty()) return found;
  std::vector<rocksdb::Slice> key_slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  const status read = impl_->read_db([&](database& db) {
    db.db().MultiGet(rocksdb::ReadOptions{}, db.handle(static_cast<family>(which)), keys.size(),
                     key_slices.data(), values.data(), statuses.data());
    return status::ok_status();
  });
  if (!read.ok()) return read;
  found.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) {
      found.emplace_back(std::nullopt);
      continue;
    }
    if (!statuses[i].ok()) return from_rocksdb(statuses[i], context);
    result<T> value = decode(i, values[i].ToStringView());
    if (!value) return value.error();
    found.emplace_back(std::move(*value));
  }
  return found;
}

result<std::vector<std::optional<model::usage_window>>> ledger_store::find_stored(
    const std::vector<model::window_identity>& identities) const {
  std::vector<std::string> keys;
  keys.reserve(identities.size());
  for (const auto& id : identities) {
    auto key = keys::window_key(id);
    if (!key) return key.error();
    keys.push_back(std::move(*key));
  }
  return multi_get<model::usage_window>(windows_family, keys, "looking up stored windows",
                                        [&](size_t i, std::string_view value) {
                                          return codec::decode_window_value(identities[i], value);
                                        });
}

result<std::vector<std::optional<model::rollup_value>>> ledger_store::find_rollups(
    std::string_view customer_id, const std::vector<model::rollup_id>& ids) const {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const auto& id : ids) {
    auto key = keys::rollup_key(customer_id, id);
    if (!key) return key.error();
    keys.push_back(std::move(*key));
  }
  return multi_get<model::rollup_value>(
      rollups_family, keys, "reading rollup totals",
      [](size_t, std::string_view value) { return codec::decode_rollup_value(value); });
}

status ledger_store::with_snapshot(const std::function<status(const snapshot_view&)>& reads) const {
  return impl_->read_db([&](database& db) {
    const rocksdb::Snapshot* snapshot = db.db().GetSnapshot();
    status done = reads(snapshot_view{db, snapshot});
    db.db().ReleaseSnapshot(snapshot);
    return done;
  });
}

// Runs `scan` on the database: the snapshot's (whose read lock the caller
// holds already) or, without one, under the read lock.
template <class Scan>
status ledger_store::read_at(const snapshot_view* at, Scan&& scan) const {
  if (at != nullptr) return scan(at->db_, at->snapshot_);
  return impl_->read_db([&](database& db) { return scan(db, nullptr); });
}

status ledger_store::scan_windows(const std::string& customer_id, int64_t from_ns, int64_t to_ns,
                                  const std::function<bool(model::usage_window&)>& visit,
                                  const snapshot_view* at) const {
  status decoded = status::ok_status();
  status scanned = scan_stored_windows(
      customer_id, from_ns, to_ns,
      [&](const stored_window& stored) {
        auto window = stored.decode();
        if (!window) decoded = window.error();
        return window.ok() && visit(*window);
      },
      at);
  return scanned.ok() ? decoded : scanned;
}

status ledger_store::scan_stored_windows(const std::string& customer_id, int64_t from_ns,
                                         int64_t to_ns,
                                         const std::function<bool(const stored_window&)>& visit,
                                         const snapshot_view* at) const {
  auto lower = keys::window_scan_bound(customer_id, from_ns);
  if (!lower) return lower.error();
  auto upper = keys::window_scan_bound(customer_id, to_ns);
  if (!upper) return upper.error();
  if (from_ns >= to_ns) return status::ok_status();
  // A window starting at to_ns has a key longer than, hence above, `upper`.
  return read_at(at, [&](database& db, const rocksdb::Snapshot* snapshot) {
    return iterate_range(db.db(), db.handle(windows_family), snapshot, *lower, *upper,
                         fmt::format("scanning the windows of '{}'", customer_id),
                         [&](std::string_view key, std::string_view value) -> result<bool> {
                           auto id = keys::parse_window_key(key);
                           if (!id) return id.error();
                           return visit(stored_window{id.value(), value});
                         });
  });
}

status ledger_store::scan_rollups(
    const std::string& customer_id, model::granularity grain, int64_t from_ns, int64_t to_ns,
    const std::function<bool(const model::rollup_id&, const model::rollup_value&)>& visit,
    const snapshot_view* at) const {
  auto lower = keys::rollup_scan_bound(customer_id, grain, from_ns);
  if (!lower) return lower.error();
  auto upper = keys::rollup_scan_bound(customer_id, grain, to_ns);
  if (!upper) return upper.error();
  if (from_ns >= to_ns) return status::ok_status();
  return read_at(at, [&](database& db, const rocksdb::Snapshot* snapshot) {
    return iterate_range(db.db(), db.handle(rollups_family), snapshot, *lower, *upper,
                         fmt::format("scanning the rollups of '{}'", customer_id),
                         [&](std::string_view key, std::string_view value) -> result<bool> {
                           auto id = keys::decode_rollup_key(key);
                           if (!id) return id.error();
                           auto decoded = codec::decode_rollup_value(value);
                           if (!decoded) return decoded.error();
                           return visit(*id, *decoded);
                         });
  });
}

status ledger_store::scan_range(
    uint32_t which, std::string_view lower, const std::optional<std::string>& upper,
    const std::function<bool(std::string_view key, std::string_view value)>& visit,
    const snapshot_view* at) const {
  if (which >= family_names.size()) {
    return {status_code::internal, fmt::format("no column family {}", which)};
  }
  return read_at(at, [&](database& db, const rocksdb::Snapshot* snapshot) {
    return iterate_range(db.db(), db.handle(static_cast<family>(which)), snapshot, lower, upper,
                         fmt::format("scanning {}", family_names[which]),
                         [&](std::string_view key, std::string_view value) -> result<bool> {
                           return visit(key, value);
                         });
  });
}

result<std::optional<std::string>> ledger_store::get(uint32_t which, std::string_view key,
                                                     const snapshot_view* at) const {
  if (which >= family_names.size()) {
    return status{status_code::internal, fmt::format("no column family {}", which)};
  }
  const std::string context = fmt::format("reading {}", family_names[which]);
  if (at == nullptr) return impl_->get(static_cast<family>(which), key, context);
  std::string value;
  rocksdb::ReadOptions options;
  options.snapshot = at->snapshot_;
  auto found = at->db_.db().Get(options, at->db_.handle(static_cast<family>(which)),
                                rocksdb::Slice(key.data(), key.size()), &value);
  if (found.IsNotFound()) return std::optional<std::string>{};
  if (!found.ok()) return from_rocksdb(found, context);
  return std::optional<std::string>{std::move(value)};
}

status ledger_store::apply_retention() {
  rocksdb::CompactRangeOptions options;
  // The bottommost level too: that is where old windows end up.
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  return impl_->read_db([&](database& db) {
    for (auto which : {windows_family, dedup_family}) {
      auto compacted = db.db().CompactRange(options, db.handle(which), nullptr, nullptr);
      if (!compacted.ok()) return from_rocksdb(compacted, "applying raw-window retention");
    }
    return status::ok_status();
  });
}

status ledger_store::scan_audit(
    const std::string& customer_id,
    const std::function<status(std::string_view value, bool& go_on)>& visit) const {
  auto prefix = keys::customer_prefix(customer_id);
  if (!prefix) return prefix.error();
  constexpr size_t key_rest_size = 16;  // recorded_at + sequence
  return impl_->scan_prefix(
      audit_family, *prefix, fmt::format("scanning the audit trail of '{}'", customer_id),
      [&](std::string_view rest, std::string_view value) -> result<bool> {
        if (rest.size() != key_rest_size) {
          return status{status_code::data_loss,
                        fmt::format("corrupt audit key: {} bytes, expected {}",
                                    prefix->size() + rest.size(), prefix->size() + key_rest_size)};
        }
        bool go_on = true;
        if (status visited = visit(value, go_on); !visited.ok()) return visited;
        return go_on;
      });
}

namespace {

// Decodes a point read's value with `decode`, keeping "absent" apart.
template <class T, class Decode>
result<std::optional<T>> decode_found(result<std::optional<std::string>> found, Decode decode) {
  if (!found) return found.error();
  if (!found.value()) return std::optional<T>{};
  auto decoded = decode(*found.value());
  if (!decoded) return decoded.error();
  return std::optional<T>{std::move(decoded.value())};
}

}  // namespace

result<std::optional<model::vm_state>> ledger_store::find_vm_state(std::string_view customer_id,
                                                                   std::string_view vm_id) const {
  auto key = keys::vm_state_key(customer_id, vm_id);
  if (!key) return key.error();
  return decode_found<model::vm_state>(impl_->get(vm_state_family, *key, "reading a vm state"),
                                       codec::decode_vm_state);
}

result<std::optional<std::string>> ledger_store::find_vm_customer(std::string_view vm_id) const {
  auto key = keys::vm_index_key(vm_id);
  if (!key) return key.error();
  return decode_found<std::string>(impl_->get(vm_index_family, *key, "reading the vm index"),
                                   codec::decode_vm_index);
}

result<std::optional<model::metald_instance>> ledger_store::find_metald_instance(
    std::string_view instance_id) const {
  auto key = keys::metald_instance_key(instance_id);
  if (!key) return key.error();
  return decode_found<model::metald_instance>(
      impl_->get(metald_instances_family, *key, "reading a metald instance"),
      codec::decode_metald_instance);
}

status ledger_store::scan_vm_states(
    const std::string& customer_id,
    const std::function<bool(const std::string&, const model::vm_state&)>& visit) const {
  auto prefix = keys::customer_prefix(customer_id);
  if (!prefix) return prefix.error();
  return impl_->scan_prefix(
      vm_state_family, *prefix, fmt::format("scanning the vm states of '{}'", customer_id),
      [&](std::string_view vm_part, std::string_view value) -> result<bool> {
        if (vm_part.empty() || static_cast<uint8_t>(vm_part[0]) + size_t{1} != vm_part.size()) {
          return status{status_code::data_loss, "corrupt vm_state key"};
        }
        auto state = codec::decode_vm_state(value);
        if (!state) return state.error();
        return visit(std::string(vm_part.substr(1)), *state);
      });
}

status ledger_store::scan_all_vm_states(
    const std::function<bool(const std::string&, const std::string&, const model::vm_state&)>&
        visit) const {
  return impl_->scan_prefix(
      vm_state_family, "", "scanning every vm state",
      [&](std::string_view key, std::string_view value) -> result<bool> {
        // <u8 length><customer><u8 length><vm>
        const size_t customer_length = key.empty() ? 0 : static_cast<uint8_t>(key[0]);
        if (key.empty() || key.size() < customer_length + 2 ||
            static_cast<uint8_t>(key[customer_length + 1]) + customer_length + 2 != key.size()) {
          return status{status_code::data_loss, "corrupt vm_state key"};
        }
        auto state = codec::decode_vm_state(value);
        if (!state) return state.error();
        return visit(std::string(key.substr(1, customer_length)),
                     std::string(key.substr(customer_length + 2)), *state);
      });
}

status ledger_store::scan_metald_instances(
    const std::function<bool(const std::string&, const model::metald_instance&)>& visit) const {
  return impl_->scan_prefix(
      metald_instances_family, "", "scanning the metald instances",
      [&](std::string_view key, std::string_view value) -> result<bool> {
        if (key.empty() || static_cast<uint8_t>(key[0]) + size_t{1} != key.size()) {
          return status{status_code::data_loss, "corrupt metald_instances key"};
        }
        auto instance = codec::decode_metald_instance(value);
        if (!instance) return instance.error();
        return visit(std::string(key.substr(1)), *instance);
      });
}

status ledger_store::scan_metald_gaps(
    const std::string& customer_id, int64_t from_ns, int64_t to_ns,
    const std::function<bool(const std::string&, const std::string&, const model::metald_gap&)>&
        visit) const {
  // Gaps are few and may be long: scan the customer's gaps starting before
  // to_ns and keep those that end after from_ns.
  auto lower = keys::customer_prefix(customer_id);
  if (!lower) return lower.error();
  auto upper = *lower;
  keys::append_timestamp(upper, to_ns);
  return impl_->read_db([&](database& db) {
    return iterate_range(db.db(), db.handle(metald_gaps_family), nullptr, *lower, upper,
                         fmt::format("scanning the metald gaps of '{}'", customer_id),
                         [&](std::string_view key, std::string_view value) -> result<bool> {
                           auto decoded = keys::decode_metald_gap_key(key);
                           if (!decoded) return decoded.error();
                           if (decoded->second.end_ns <= from_ns) return true;
                           auto region = codec::decode_metald_gap(value);
                           if (!region) return region.error();
                           return visit(decoded->first, *region, decoded->second);
                         });
  });
}

// The audit family holds several kinds of entries; each kind's format byte
// tells them apart.
status ledger_store::scan_conflicts(
    const std::string& customer_id,
    const std::function<bool(const conflict_record&)>& visit) const {
  return scan_audit(customer_id, [&](std::string_view value, bool& go_on) {
    // Ingest records and financial operations (put_audit) share the family.
    if (value.empty() || static_cast<uint8_t>(value[0]) != codec::conflict_format) {
      return status::ok_status();
    }
    auto record = codec::decode_conflict(value);
    if (!record) return record.error();
    go_on = visit(*record);
    return status::ok_status();
  });
}

status ledger_store::scan_ingest_records(
    const std::string& customer_id, const std::function<bool(const ingest_record&)>& visit) const {
  return scan_audit(customer_id, [&](std::string_view value, bool& go_on) {
    if (value.empty() || static_cast<uint8_t>(value[0]) != codec::ingest_record_format) {
      return status::ok_status();
    }
    auto record = codec::decode_ingest_record(value);
    if (!record) return record.error();
    record->customer_id = customer_id;
    go_on = visit(*record);
    return status::ok_status();
  });
}

result<audit_chain_report> ledger_store::verify_audit_chain() const {
  auto verified = impl_->read_db([](database& db) {
    return audit_chain::verify(db.db(), db.handle(meta_family), db.handle(audit_family));
  });
  if (!verified.ok()) return verified.error();
  const auto& v = verified.value();
  return audit_chain_report{v.intact,         v.entries_verified,
                            v.chain.sequence, security::to_hex(v.chain.hash),
                            v.problem,        v.first_bad_sequence};
}

result<std::vector<std::string>> ledger_store::list_customers() const {
  std::set<std::string> customers;
  for (auto which : {windows_family, plans_family, invoices_family, vm_state_family}) {
    std::string lower;
    for (;;) {
      std::optional<std::string> customer;
      auto scanned =
          scan_range(which, lower, std::nullopt, [&](std::string_view key, std::string_view) {
            bytes::reader in(key);
            if (auto length = in.u8(); length && in.remaining() >= *length) {
              customer = std::string(key.substr(1, *length));
            }
            return false;
          });
      if (!scanned.ok()) return scanned;
      if (!customer) break;
      if (!customer->empty()) customers.insert(*customer);
      auto prefix = keys::customer_prefix(*customer);
      if (!prefix) return prefix.error();
      auto next = keys::prefix_successor(*prefix);
      if (!next) break;
      lower = std::move(*next);
    }
  }
  return std::vector<std::string>(customers.begin(), customers.end());
}

result<std::vector<stored_record>> ledger_store::export_customer_records(
    const std::string& customer_id) const {
  auto prefix = keys::customer_prefix(customer_id);
  if (!prefix) return prefix.error();
  std::vector<stored_record> records;
  for (auto which : {plans_family, invoices_family, vm_state_family, metald_gaps_family}) {
    auto scanned = scan_range(which, *prefix, keys::prefix_successor(*prefix),
                              [&](std::string_view key, std::string_view value) {
                                records.push_back({which, std::string(key), std::string(value)});
                                return true;
                              });
    if (!scanned.ok()) return scanned;
  }
  // vm_state keys are lp(customer) | lp(vm_id); each VM's index entry goes along.
  const size_t states = records.size();
  for (size_t i = 0; i < states; ++i) {
    if (records[i].family != vm_state_family) continue;
    auto vm_key = std::string_view(records[i].key).substr(prefix->size());
    records.push_back({vm_index_family, std::string(vm_key), codec::encode_vm_index(customer_id)});
  }
  return records;
}

status ledger_store::erase_customer(const std::string& customer_id,
                                    const std::vector<uint32_t>& families, size_t per_commit) {
  auto prefix = keys::customer_prefix(customer_id);
  if (!prefix) return prefix.error();
  for (auto which : families) {
    write_set erase;
    status committed;
    const status scanned = scan_range(which, *prefix, keys::prefix_successor(*prefix),
                                      [&](std::string_view key, std::string_view) {
                                        erase.erase_record(which, std::string(key));
                                        if (erase.mutation_count() < per_commit) return true;
                                        committed = commit_and_wait(std::exchange(erase, {}));
                                        return committed.ok();
                                      });
    if (!scanned.ok()) return scanned;
    if (!committed.ok()) return committed;
    if (status rest = commit_and_wait(std::move(erase)); !rest.ok()) return rest;
  }
  return status::ok_status();
}

status ledger_store::commit_and_wait(write_set writes) {
  std::promise<status> committed;
  auto outcome = committed.get_future();
  commit(std::move(writes), [&committed](status s) { committed.set_value(std::move(s)); });
  return outcome.get();
}

}  // namespace billing::storage
