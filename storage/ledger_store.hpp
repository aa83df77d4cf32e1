// The node's embedded RocksDB: one store per process, shared by all customer
// actors, each of which owns its customer's key range. See storage/README.md
// for the column families and key layout.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/ingest.hpp"
#include "model/invoice.hpp"
#include "model/metald.hpp"
#include "model/pricing.hpp"
#include "model/rollup.hpp"
#include "model/status.hpp"
#include "model/trace_parent.hpp"
#include "model/usage_window.hpp"
#include "observability/log.hpp"
#include "observability/span.hpp"
#include "storage/backup.hpp"
#include "storage/replication_log.hpp"
#include "storage/write_pause.hpp"

namespace rocksdb {
class DB;
class Env;
class Snapshot;
}  // namespace rocksdb

namespace billing::storage {

struct store_options {
  std::string data_dir = "./data";
  // Sync the WAL before a commit is reported durable. Only the benchmark of
  // the raw limit may turn this off; the server refuses to.
  bool sync_writes = true;
  uint64_t block_cache_bytes = uint64_t{256} << 20;
  uint64_t write_buffer_bytes = uint64_t{64} << 20;
  // RocksDB's file system and clock; null means the real ones. Tests inject
  // I/O failures through it.
  std::shared_ptr<rocksdb::Env> env;
  // Raw windows (and their dedup entries) starting before now - this are
  // dropped by compaction; 0 keeps them forever. Rollups are always kept.
  int64_t raw_retention_ns = 0;
  // The clock retention reads; null means the system clock. Tests set it.
  std::function<int64_t()> clock;
  // Told how long each synced group write took (on the committer thread);
  // for the fsync latency metric. May be null.
  std::function<void(std::chrono::nanoseconds)> on_synced_write;
  // RocksDB's info log: empty sends its lines of rocksdb_log_level and above
  // into billingd's log; a directory keeps RocksDB's own LOG files there
  // instead (never the data dir by default: see storage/info_log.hpp).
  std::string rocksdb_log_dir;
  observability::log_level rocksdb_log_level = observability::log_level::warn;
  // When writes paused by a full disk or a storage error are tried again.
  resume_policy resume;
  // Entries each shard's log keeps (older ones are deleted as new ones are
  // written); a replica further behind gets a snapshot instead.
  uint64_t replication_log_entries = 20'000;
  // Where the commit group and WAL fsync spans go (storage/commit_tracing.hpp);
  // null: not traced.
  std::shared_ptr<observability::tracer> tracer = {};
};

// A window stored with other values than a re-send carried: the attempt is
// refused and kept in the customer's audit trail.
struct conflict_record {
  model::batch_meta meta;
  model::usage_window attempted;
  model::usage_window stored;
};

// What one customer's part of an ingest batch did, for the audit trail.
struct ingest_record {
  std::string customer_id;
  // batch id, sending instance, region, received at, authenticated caller
  model::batch_meta meta;
  uint32_t accepted = 0;
  uint32_t duplicate = 0;
  uint32_t rejected = 0;  // conflicting re-sends; invalid items never reach the ledger
};

// The result of walking the audit chain (storage/audit_chain.hpp).
struct audit_chain_report {
  bool intact = false;
  uint64_t entries_verified = 0;
  uint64_t head_sequence = 0;
  std::string head_hash_hex;
  std::string problem;              // empty when intact; names the entry otherwise
  uint64_t first_bad_sequence = 0;  // the entry where the chain breaks, when it is one entry
};

// One key-value pair of a column family, as stored: what a shard hand-over
// copies between nodes for the families it copies verbatim.
struct stored_record {
  uint32_t family = 0;
  std::string key;
  std::string value;
};

// A customer's records as a shard hand-over moves them.
struct customer_records {
  std::string customer_id;
  std::vector<stored_record> records;
};

// The writes one customer actor wants made atomically. Built on the actor's
// thread, then handed to ledger_store::commit.
class write_set {
 public:
  // Raw window (windows family); its key is its identity, what find_stored reads.
  void put_window(const model::usage_window& window);
  // Audit entry for a refused conflicting re-send, recorded at the current
  // wall-clock time.
  void put_conflict(const conflict_record& record);
  // Audit entry recording an ingest batch's part for this customer.
  void put_ingest_record(const ingest_record& record);
  // Billing records (defined in storage/billing_records.cpp, layouts in
  // storage/README.md). A plan version for `customer_id` ("" is the default
  // plan); a finalized invoice (sealed: content_hash set); the node's next
  // invoice number and the latest finalized period end (meta family).
  void put_plan_version(std::string_view customer_id, const model::plan_version& version);
  void put_invoice(const model::invoice& finalized);
  void put_invoice_counters(uint64_t next_number, int64_t finalized_through_ns);
  // The one place where financial operations enter the audit trail: `kind`
  // (e.g. "plan.set", "invoice.finalize"), `who` (the caller, once
  // authentication exists) and `what` (a human-readable description); chained
  // into the tamper-evident audit log like every audit entry.
  void put_audit(std::string_view customer_id, std::string_view kind, std::string_view who,
                 std::string_view what);

  // Adds every bucket of `rollups` to the customer's stored rollups (a RocksDB
  // Merge per bucket, combined by storage/rollup_merge).
  void merge_rollups(std::string_view customer_id, const model::rollup_accumulator& rollups);
  // Sets a rollup bucket's stored total (a Put): for the customer's ledger,
  // which knows the stored total (find_rollups) since it is its only writer.
  void put_rollup(std::string_view customer_id, const model::rollup_id& id,
                  const model::rollup_value& total);

  // A VM's metald state (vm_state family) and its vm -> customer entry
  // (vm_index family), so a later NotifyVmStopped finds the customer.
  void put_vm_state(std::string_view customer_id, std::string_view vm_id,
                    const model::vm_state& state);
  // A gap in a VM's samples (metald_gaps family).
  void put_metald_gap(std::string_view customer_id, std::string_view vm_id, std::string_view region,
                      const model::metald_gap& gap);
  // A metald instance's heartbeat state (metald_instances family).
  void put_metald_instance(std::string_view instance_id, const model::metald_instance& instance);

  // Cluster hinted handoff (handoff family): a message held for the
  // unreachable node `node_id` under `sequence`, and its removal once that
  // node has stored it. The value is opaque here (cluster/handoff_queue).
  void put_handoff(std::string_view node_id, uint64_t sequence, std::string value);
  void erase_handoff(std::string_view node_id, uint64_t sequence);

  // Shard hand-over (cluster/handover): a record copied from the previous
  // owner as it was stored there, and the removal of one key. (Point
  // deletes, not DeleteRange: RocksDB 7.8 asserts when a range tombstone
  // meets the memtable insert hints the windows family uses.)
  void put_record(const stored_record& record);
  // A replica snapshot's audit entry (its key complete): chained into this
  // node's audit chain unless an entry with this key is stored already.
  void put_chained_audit(std::string key, std::string value);
  void erase_record(uint32_t which, std::string key);

  // Replication (storage/replication_log.hpp, cluster/replication). As
  // shard `shard`'s leader at `epoch`: the write_set becomes the shard's next
  // log entry and its completion waits for a majority of the shard's
  // replicas (through the store's replication sink; without one, or when
  // the sink says this node does not lead the shard at `epoch`, the commit
  // fails with unavailable and writes nothing). An empty write_set logs
  // nothing and completes once the shard's log as it is now has a majority.
  void replicate_as_leader(uint32_t shard, uint64_t epoch);
  // As a follower: the leader's entries of shard `shard`, applied verbatim
  // in order; the first must follow the shard's last entry here (aborted
  // otherwise, nothing written). The write_set's own mutations (if any) are
  // written with them.
  void apply_as_follower(uint32_t shard, std::vector<log_entry> entries);
  // The shard's log ends at `position` from now on (a snapshot was installed);
  // the caller erases the old log keys in the same write_set.
  void reset_shard_log(uint32_t shard, log_position position);
  // This replica lost (or regained) what it held of `shard`, or started on
  // an empty store with the placement not read yet (replication_log.hpp,
  // "unsynced/"). Node-local: never part of a logged entry.
  void mark_unsynced(uint32_t shard);
  void mark_synced(uint32_t shard);
  // A snapshot install of `shard` began erasing it here / finished
  // ("installing/", replication_log.hpp). Node-local, like the above.
  void mark_installing(uint32_t shard);
  void mark_installed(uint32_t shard);
  void mark_unsynced_pending();
  void clear_unsynced_pending();

  struct replication_role {
    enum class kind : uint8_t { none, lead, follow, reset };
    kind what = kind::none;
    uint32_t shard = 0;
    uint64_t epoch = 0;
    std::vector<log_entry> entries;  // follow
    log_position reset_to;           // reset
  };
  const replication_role& replication() const { return replication_; }

  // ok unless a put_* was refused because an id does not fit a key (longer
  // than keys::max_part_bytes); commit() then fails the whole write_set with
  // this status and writes none of it.
  const status& encode_status() const { return encode_status_; }

  bool empty() const {
    return mutations_.empty() && replication_.entries.empty() &&
           replication_.what != replication_role::kind::reset;
  }

  // The spans of the requests waiting for this write (untraced ones are
  // ignored): its commit group and fsync spans become their children.
  void add_trace(const model::trace_parent& parent) {
    if (parent.traced()) traces_.push_back(parent);
  }
  const std::vector<model::trace_parent>& traces() const { return traces_; }
  size_t mutation_count() const { return mutations_.size(); }

  struct mutation {
    uint32_t family;  // index into the store's column families
    std::string key;
    std::string value;
    // Audit keys end in a sequence number that only the store can assign
    // uniquely; commit() appends it to `key` when this is set.
    bool append_audit_sequence = false;
    // A Merge operand (rollups) rather than a Put.
    bool merge = false;
    // A Delete of `key` (value unused) rather than a Put.
    bool erase = false;
    // An audit entry whose key is complete (a replicated one): chained as is.
    bool chain_audit = false;
  };
  const std::vector<mutation>& mutations() const { return mutations_; }

 private:
  // Audit entry recorded at `recorded_at_ns` (the key's time).
  void put_audit(std::string_view customer_id, int64_t recorded_at_ns, std::string value);
  // A Put of `value` under `key`, or `key`'s error recorded (see encode_status).
  void put(uint32_t family, result<std::string> key, std::string value);

  std::vector<mutation> mutations_;
  replication_role replication_;
  status encode_status_;
  std::vector<model::trace_parent> traces_;
};

// Counters for observability and for tests of group commit.
struct commit_stats {
  uint64_t commits_requested = 0;  // write_sets handed to commit()
  uint64_t synced_writes = 0;      // RocksDB writes issued (one fsync each when syncing)
  // RocksDB's own figures (0 while the database is being reopened).
  uint64_t sst_bytes = 0;          // live SST files, every family
  uint64_t memtable_bytes = 0;     // all memtables, every family
  uint64_t block_cache_bytes = 0;  // block cache in use
  uint64_t estimated_windows = 0;  // raw windows (RocksDB's estimate)
};

// One window during a scan: its identity from the key, its value decoded
// only on demand, so a reader that needs bounds (or the memory gauge) skips
// the rest. Views into RocksDB's buffers: valid only during the visit.
class stored_window {
 public:
  stored_window(model::window_identity_view identity, std::string_view value)
      : identity(identity), value_(value) {}

  model::window_identity_view identity;

  // The whole window; data_loss if the value does not decode.
  result<model::usage_window> decode() const;
  // memory_bytes_used alone, after the same checks of the value's format
  // and length as decode().
  result<uint64_t> memory_bytes_used() const;

 private:
  std::string_view value_;
};

class database;

// A consistent point-in-time view for several reads (a RocksDB snapshot),
// valid only inside ledger_store::with_snapshot: reads through it see the
// same whole commits, however long they take.
class snapshot_view {
 public:
  snapshot_view(const snapshot_view&) = delete;
  snapshot_view& operator=(const snapshot_view&) = delete;

 private:
  friend class ledger_store;
  snapshot_view(database& db, const rocksdb::Snapshot* snapshot) : db_(db), snapshot_(snapshot) {}
  database& db_;
  const rocksdb::Snapshot* snapshot_;
};

class ledger_store {
 public:
  // Opens (creating if needed) the database under options.data_dir and starts
  // the group-commit thread.
  static result<std::shared_ptr<ledger_store>> open(const store_options& options);
  // Whether `data_dir` holds a ledger already (open would not create one).
  static bool exists(const std::string& data_dir);

  ~ledger_store();  // drains pending commits, stops the committer, closes the DB
  ledger_store(const ledger_store&) = delete;
  ledger_store& operator=(const ledger_store&) = delete;

  // For each identity (all of one customer), the window stored under it, or
  // nullopt if none is stored: point lookups (MultiGet) of the windows
  // family, whose key is the identity (the memtable and SST bloom filters
  // answer most lookups of new windows without a search).
  result<std::vector<std::optional<model::usage_window>>> find_stored(
      const std::vector<model::window_identity>& identities) const;

  // The stored total of each of `customer_id`'s rollup buckets `ids` (merge
  // operands folded), or nullopt when the bucket holds nothing.
  result<std::vector<std::optional<model::rollup_value>>> find_rollups(
      std::string_view customer_id, const std::vector<model::rollup_id>& ids) const;

  // Queues `writes` for the next group commit: all write_sets pending at that
  // moment go to RocksDB as one WriteBatch with one WAL sync. `on_done` runs
  // on the committer thread once that write returned: ok means durable.
  // An empty write_set completes at once (still through the committer so the
  // order of completions matches the order of calls).
  void commit(write_set writes, std::function<void(status)> on_done);
  // commit() for callers that may block (off the actors' scheduler: detached
  // actors, maintenance, tools): waits for the outcome and returns it.
  status commit_and_wait(write_set writes);

  // Calls `visit` for every stored window of `customer_id` whose window_start
  // lies in [from_ns, to_ns), in (window_start, region, vm_id) order. Stops
  // early when `visit` returns false.
  status scan_windows(const std::string& customer_id, int64_t from_ns, int64_t to_ns,
                      const std::function<bool(model::usage_window&)>& visit,
                      const snapshot_view* at = nullptr) const;

  // The same windows, undecoded (see stored_window).
  status scan_stored_windows(const std::string& customer_id, int64_t from_ns, int64_t to_ns,
                             const std::function<bool(const stored_window&)>& visit,
                             const snapshot_view* at = nullptr) const;

  // Calls `visit` for every rollup bucket of `customer_id` at `grain` whose
  // bucket starts in [from_ns, to_ns), in (bucket_start, region, vm_id) order.
  status scan_rollups(
      const std::string& customer_id, model::granularity grain, int64_t from_ns, int64_t to_ns,
      const std::function<bool(const model::rollup_id&, const model::rollup_value&)>& visit,
      const snapshot_view* at = nullptr) const;

  // Runs `reads` with a snapshot for reads that must agree with each other
  // (scans take it as their last argument); the view ends when it returns.
  status with_snapshot(const std::function<status(const snapshot_view&)>& reads) const;

  // Compacts the raw windows and dedup families completely, so that retention
  // drops everything past the cutoff now rather than when RocksDB next
  // rewrites those files. Blocks for the compaction: call it off the actors'
  // scheduler.
  status apply_retention();

  // Calls `visit` for every conflict recorded for `customer_id`, oldest first.
  status scan_conflicts(const std::string& customer_id,
                        const std::function<bool(const conflict_record&)>& visit) const;
  // Calls `visit` for every ingest recorded for `customer_id`, oldest first.
  status scan_ingest_records(const std::string& customer_id,
                             const std::function<bool(const ingest_record&)>& visit) const;

  // Walks the whole audit chain (every audit entry ever committed, in commit
  // order) on a snapshot and checks every hash and link. Reads everything:
  // call it off the actors' scheduler. A broken chain is an ok result with
  // intact == false; I/O errors are a status.
  result<audit_chain_report> verify_audit_chain() const;

  // Generic reads for the billing records (storage/billing_records.cpp):
  // every key of family `which` in [lower, upper) (no upper: to the end), in
  // order, until `visit` returns false; and one key's value.
  status scan_range(uint32_t which, std::string_view lower, const std::optional<std::string>& upper,
                    const std::function<bool(std::string_view key, std::string_view value)>& visit,
                    const snapshot_view* at = nullptr) const;
  result<std::optional<std::string>> get(uint32_t which, std::string_view key,
                                         const snapshot_view* at = nullptr) const;

  // Point reads of the metald families; nullopt when nothing is stored.
  result<std::optional<model::vm_state>> find_vm_state(std::string_view customer_id,
                                                       std::string_view vm_id) const;
  result<std::optional<std::string>> find_vm_customer(std::string_view vm_id) const;
  result<std::optional<model::metald_instance>> find_metald_instance(
      std::string_view instance_id) const;
  // Every metald VM state of `customer_id`, in vm order; stops when `visit`
  // returns false.
  status scan_vm_states(
      const std::string& customer_id,
      const std::function<bool(const std::string&, const model::vm_state&)>& visit) const;
  // Every metald VM state of every customer, as (customer, vm, state); stops
  // when `visit` returns false. For recovery at start (held stops).
  status scan_all_vm_states(const std::function<bool(const std::string&, const std::string&,
                                                     const model::vm_state&)>& visit) const;
  // Every stored metald instance, in id order; stops when `visit` returns false.
  status scan_metald_instances(
      const std::function<bool(const std::string&, const model::metald_instance&)>& visit) const;

  // Calls `visit(vm_id, region, gap)` for every recorded gap of `customer_id`
  // that starts before to_ns and ends after from_ns, in start order.
  status scan_metald_gaps(const std::string& customer_id, int64_t from_ns, int64_t to_ns,
                          const std::function<bool(const std::string&, const std::string&,
                                                   const model::metald_gap&)>& visit) const;

  commit_stats stats() const;

  // Replication (cluster/replication): the sink that lead commits report to
  // (set once, before the first lead commit); where shard `shard`'s log ends
  // here, durably; and up to `max_entries` entries (at most about
  // `max_bytes`) of it from `from_seq` on, fewer when the log ends or was
  // trimmed (the first returned then has a later seq).
  void set_replication_sink(std::shared_ptr<replication_sink> sink);
  result<log_position> shard_position(uint32_t shard, const snapshot_view* at = nullptr) const;
  result<std::vector<log_entry>> read_log(uint32_t shard, uint64_t from_seq, size_t max_entries,
                                          size_t max_bytes) const;

  // Whether commits are taken, or paused after a storage error (a full
  // disk); and the free bytes on the data volume (0 when unknown).
  write_health health() const;
  uint64_t free_bytes() const;

  // Every customer with keys in the windows, plans, invoices or vm_state
  // families (the default plan's "" excluded), in order.
  result<std::vector<std::string>> list_customers() const;
  // What a shard hand-over copies verbatim (raw windows are re-ingested
  // instead): the customer's plans, invoices, metald VM states and gaps,
  // and the vm index entries of those VMs.
  result<std::vector<stored_record>> export_customer_records(const std::string& customer_id) const;
  // Deletes every key of `customer_id` in the `families`, in synced commits
  // of at most `per_commit` keys (a large ledger never becomes one huge
  // write); blocks until they are durable: call it off the actors' scheduler.
  status erase_customer(const std::string& customer_id, const std::vector<uint32_t>& families,
                        size_t per_commit = 10'000);

  // Takes an online backup into `backup_dir` (see storage/backup.hpp) while
  // commits continue. Blocks the calling thread for the copy, so call it off
  // the actors' scheduler. aborted while another backup of this store runs.
  result<backup_info> create_backup(const std::string& backup_dir);

 private:
  struct impl;
  explicit ledger_store(std::unique_ptr<impl> impl);
  template <class Scan>
  status read_at(const snapshot_view* at, Scan&& scan) const;
  // One MultiGet of `keys` in family `which`; each found value decoded by
  // decode(index, bytes) -> result<T>.
  template <class T, class Decode>
  result<std::vector<std::optional<T>>> multi_get(uint32_t which,
                                                  const std::vector<std::string>& keys,
                                                  std::string_view context, Decode&& decode) const;
  // Calls `visit` with every audit value of `customer_id`, oldest first.
  status scan_audit(const std::string& customer_id,
                    const std::function<status(std::string_view value, bool& go_on)>& visit) const;
  std::unique_ptr<impl> impl_;
};

}  // namespace billing::storage
