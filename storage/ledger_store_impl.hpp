// The private state of ledger_store (storage/ledger_store.hpp), shared by
// its translation units: ledger_store.cpp (opening, reopening, the public
// surface), ledger_commit.cpp (the committer's write path) and
// ledger_reads.cpp (point reads and scans). Not for use outside storage/.
#pragma once

#include "storage/ledger_store.hpp"

#include <rocksdb/write_batch.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "observability/log.hpp"
#include "storage/audit_chain.hpp"
#include "storage/background_errors.hpp"
#include "storage/commit_tracing.hpp"
#include "storage/database.hpp"
#include "storage/group_committer.hpp"
#include "storage/replication_log.hpp"

namespace billing::storage {

// Visits the entries of `family` from `lower` up to `upper` (exclusive; none:
// to the end) in key order until `visit` answers false or fails; `what`
// names the scan in errors.
status iterate_range(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family, const rocksdb::Snapshot* snapshot,
    std::string_view lower, const std::optional<std::string>& upper, std::string_view what,
    const std::function<result<bool>(std::string_view key, std::string_view value)>& visit);

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
}  // namespace billing::storage
