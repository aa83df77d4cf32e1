#include "storage/database.hpp"

#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <map>
#include <string>

#include "model/calendar.hpp"
#include "storage/codec.hpp"
#include "storage/info_log.hpp"
#include "storage/retention.hpp"
#include "storage/rollup_merge.hpp"

namespace billing::storage {

namespace {

bool is_supported(rocksdb::CompressionType type) {
  auto supported = rocksdb::GetSupportedCompressions();
  return std::find(supported.begin(), supported.end(), type) != supported.end();
}

// lp(customer): the prefix every customer-ranged key starts with. The
// memtable remembers where it last inserted a key of each prefix and starts
// the next insert of that customer there: a commit group writes each
// customer's keys together and mostly in order, so most inserts then cost a
// few comparisons instead of a search from the top of the skip list.
class customer_prefix_transform final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "billing.customer_prefix.v1"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), static_cast<size_t>(static_cast<uint8_t>(key[0])) + 1};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return !key.empty() && key.size() > static_cast<uint8_t>(key[0]);
  }
};

bool is_customer_ranged(family which) {
  return which == windows_family || which == audit_family || which == rollups_family;
}

rocksdb::DBOptions make_db_options(const store_options& store) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.paranoid_checks = true;
  // Every acknowledged write was synced, so only an unacknowledged torn tail
  // may be missing from the WAL. Anything else is damage: refuse to open
  // rather than silently recover to an earlier point and lose acked metrics.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  options.track_and_verify_wals_in_manifest = true;
  // RocksDB's info log never goes to the data volume by default (see
  // storage/info_log.hpp): into billingd's log, or RocksDB's own LOG files in
  // a directory the operator chose (best on another volume).
  if (store.rocksdb_log_dir.empty()) {
    options.info_log = make_info_log(store.rocksdb_log_level);
  } else {
    options.db_log_dir = store.rocksdb_log_dir;
    options.max_log_file_size = uint64_t{16} << 20;
    options.keep_log_file_num = 4;
  }
  return options;
}

rocksdb::ColumnFamilyOptions make_family_options(family which, const store_options& store,
                                                 const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions options;
  options.write_buffer_size = store.write_buffer_bytes;
  options.compaction_style = rocksdb::kCompactionStyleLevel;
  options.level_compaction_dynamic_level_bytes = true;
  if (is_supported(rocksdb::kLZ4Compression)) {
    options.compression = rocksdb::kLZ4Compression;
  } else if (is_supported(rocksdb::kSnappyCompression)) {
    options.compression = rocksdb::kSnappyCompression;
  } else {
    options.compression = rocksdb::kNoCompression;
  }
  // Most data ends in the bottommost level and is rarely rewritten there, so
  // it is worth ZSTD's better ratio.
  if (is_supported(rocksdb::kZSTD)) options.bottommost_compression = rocksdb::kZSTD;

  rocksdb::BlockBasedTableOptions table;
  // Partitioned indexes and filters. A bottommost file holds most of a
  // family, and its index (or filter) as one block is megabytes, more than
  // a block cache shard (1/64 of the cache) can keep: it was evicted and read
  // again, ZSTD-decompressed, by nearly every iterator, two thirds of a
  // billing-window query. Partitioned, only a small top level stays pinned
  // and the partitions (metadata_block_size, 4 KiB) are cached like data.
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.pin_top_level_index_and_filter = true;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  // Bloom filters only help point lookups: every ingest looks up its windows'
  // identities in `windows` (mostly windows not yet stored, which the filter
  // answers without I/O), a customer ledger reads each rollup bucket's total
  // once (mostly new buckets), and open reads the schema version. The other
  // families are only range-scanned, where a whole-key filter is never consulted.
  if (which == windows_family || which == rollups_family || which == meta_family) {
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  }
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (which == windows_family) {
    // The same lookups in the memtable: a whole-key bloom filter there answers
    // "not stored" without a skip-list search (it was a tenth of ingest's
    // instructions).
    options.memtable_prefix_bloom_size_ratio = 0.05;
    options.memtable_whole_key_filtering = true;
    // Raw windows are the bulk of every flush and compress poorly (unique
    // ids and counters); compressing them on the ingest path cost more CPU
    // than it saved. The bottommost level still gets ZSTD.
    options.compression = rocksdb::kNoCompression;
  }

  if (is_customer_ranged(which)) {
    // Only where to start inserting; reads and filters do not use it.
    options.memtable_insert_with_hint_prefix_extractor =
        std::make_shared<customer_prefix_transform>();
  }
  if (which == rollups_family) {
    options.merge_operator = make_rollup_merge_operator();
    // A day or month bucket gets an operand per commit group; past this many
    // in the memtable RocksDB folds them into one value at write time, so a
    // query never merges long chains.
    options.max_successive_merges = 16;
  }
  if (which == windows_family || which == dedup_family) {
    options.compaction_filter_factory = make_retention_filter_factory(
        which == windows_family ? retained_key_kind::window : retained_key_kind::dedup,
        store.raw_retention_ns, store.clock ? store.clock : unix_clock{model::unix_now_ns});
  }
  return options;
}

// Version 1 ledgers had raw windows but no rollups: add every stored window to
// the rollups, then record version 2, all in one synced WriteBatch so that a
// crash leaves either version 1 (and the migration runs again) or version 2.
status rebuild_rollups(rocksdb::DB& db, const std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
  std::map<std::string, model::rollup_accumulator> by_customer;
  std::unique_ptr<rocksdb::Iterator> it(
      db.NewIterator(rocksdb::ReadOptions{}, handles[windows_family]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto id = keys::decode_window_key(it->key().ToStringView());
    if (!id) return id.error();
    auto window = codec::decode_window_value(*id, it->value().ToStringView());
    if (!window) return window.error();
    if (status added = by_customer[id->customer_id].add(*window); !added.ok()) return added;
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "reading windows to rebuild rollups");

  rocksdb::WriteBatch batch;
  for (const auto& [customer, rollups] : by_customer) {
    for (const auto& [bucket, value] : rollups.buckets()) {
      auto key = keys::rollup_key(customer, bucket);
      if (!key) return key.error();
      auto merged = batch.Merge(handles[rollups_family], *key, codec::encode_rollup_value(value));
      if (!merged.ok()) return from_rocksdb(merged, "rebuilding rollups");
    }
  }
  auto versioned = batch.Put(handles[meta_family], keys::schema_version_key,
                             codec::encode_schema_version(codec::current_schema_version));
  if (!versioned.ok()) return from_rocksdb(versioned, "rebuilding rollups");
  rocksdb::WriteOptions durable;
  durable.sync = true;
  return from_rocksdb(db.Write(durable, &batch), "writing rebuilt rollups");
}

}  // namespace

status from_rocksdb(const rocksdb::Status& rocks_status, std::string_view context) {
  if (rocks_status.ok()) return status::ok_status();
  status_code code = status_code::internal;
  if (rocks_status.IsNoSpace()) {
    code = status_code::resource_exhausted;  // ENOSPC: the data volume is full
  } else if (rocks_status.IsCorruption()) {
    code = status_code::data_loss;
  } else if (rocks_status.IsIOError() || rocks_status.IsBusy() || rocks_status.IsTryAgain() ||
             rocks_status.IsTimedOut() || rocks_status.IsShutdownInProgress() ||
             rocks_status.IsIncomplete() || rocks_status.IsAborted()) {
    code = status_code::unavailable;
  } else if (rocks_status.IsNotFound()) {
    code = status_code::not_found;
  }
  // InvalidArgument, NotSupported and the rest are our misuse of RocksDB.
  return {code, fmt::format("{}: {}", context, rocks_status.ToString())};
}

result<std::unique_ptr<database>> database::open(const store_options& options,
                                                 const open_settings& settings) {
  rocksdb::DBOptions db_options = make_db_options(options);
  if (options.env) db_options.env = options.env.get();
  if (settings.listener) db_options.listeners.push_back(settings.listener);
  const auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (uint32_t index = 0; index < family_names.size(); ++index) {
    descriptors.emplace_back(std::string(family_names[index]),
                             make_family_options(static_cast<family>(index), options, cache));
  }
  // RocksDB refuses to open without every family on disk; a newer schema may
  // have added some, and we want to get as far as reporting its version.
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_options, options.data_dir, &existing).ok()) {
    for (const auto& name : existing) {
      if (std::find(family_names.begin(), family_names.end(), name) == family_names.end()) {
        descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions{});
      }
    }
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw_db = nullptr;
  auto opened = settings.read_only ? rocksdb::DB::OpenForReadOnly(db_options, options.data_dir,
                                                                  descriptors, &handles, &raw_db)
                                   : rocksdb::DB::Open(db_options, options.data_dir, descriptors,
                                                       &handles, &raw_db);
  if (!opened.ok()) {
    return from_rocksdb(opened, fmt::format("opening the ledger in '{}'{}", options.data_dir,
                                            settings.read_only ? " for reading" : ""));
  }
  auto opened_db =
      std::make_unique<database>(open_key{}, options.env, std::unique_ptr<rocksdb::DB>(raw_db),
                                 std::move(handles), settings.read_only);
  if (auto checked = opened_db->check_schema_version(); !checked.ok()) return checked;
  return opened_db;
}

database::database(open_key, std::shared_ptr<rocksdb::Env> env, std::unique_ptr<rocksdb::DB> db,
                   std::vector<rocksdb::ColumnFamilyHandle*> handles, bool read_only)
    : env_(std::move(env)),
      db_(std::move(db)),
      handles_(std::move(handles)),
      read_only_(read_only),
      flush_on_close_(!read_only) {}

database::~database() {
  // A clean close flushes the memtables, so the next open need not replay a
  // large WAL. Failure loses nothing: every acknowledged write is in the
  // synced WAL, and the next open replays it.
  if (flush_on_close_) {
    rocksdb::FlushOptions wait;
    wait.wait = true;
    (void)db_->Flush(wait, std::vector<rocksdb::ColumnFamilyHandle*>(handles_));
  }
  for (auto* handle : handles_) {
    // Cannot fail for handles this DB returned; nothing to report it to anyway.
    (void)db_->DestroyColumnFamilyHandle(handle);
  }
  // Close() reports errors that the destructor would swallow; all acknowledged
  // writes are in the synced WAL already, so a failed close loses nothing.
  (void)db_->Close();
}

// Only a full disk makes the store open read-only.
constexpr std::string_view read_only_refusal =
    "the ledger must be written before it can be used (a new ledger or a schema migration) "
    "and its data volume is full";

status database::check_schema_version() {
  std::string stored;
  auto read =
      db_->Get(rocksdb::ReadOptions{}, handle(meta_family), keys::schema_version_key, &stored);
  if (read.IsNotFound()) {
    auto empty = families_are_empty();
    if (!empty) return empty.error();
    if (!*empty) {
      return {status_code::data_loss, "the ledger holds data but no schema version"};
    }
    if (read_only_) return {status_code::resource_exhausted, std::string(read_only_refusal)};
    rocksdb::WriteOptions durable;
    durable.sync = true;
    return from_rocksdb(db_->Put(durable, handle(meta_family), keys::schema_version_key,
                                 codec::encode_schema_version(codec::current_schema_version)),
                        "writing the schema version");
  }
  if (!read.ok()) return from_rocksdb(read, "reading the schema version");

  auto version = codec::decode_schema_version(stored);
  if (!version) return version.error();
  if (*version > codec::current_schema_version) {
    return {status_code::failed_precondition,
            fmt::format("the ledger has schema version {}, newer than version {} of this build; "
                        "refusing to open it (run a newer build)",
                        *version, codec::current_schema_version)};
  }
  if (*version == 1 && codec::current_schema_version == 2) {
    if (read_only_) return {status_code::resource_exhausted, std::string(read_only_refusal)};
    return rebuild_rollups(*db_, handles_);
  }
  if (*version < codec::current_schema_version) {
    return {status_code::failed_precondition,
            fmt::format("the ledger has schema version {} and this build (version {}) has no "
                        "migration from it",
                        *version, codec::current_schema_version)};
  }
  return status::ok_status();
}

result<bool> database::families_are_empty() {
  for (auto which : {windows_family, dedup_family, audit_family, rollups_family}) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions{}, handle(which)));
    it->SeekToFirst();
    if (it->Valid()) return false;
    if (!it->status().ok()) return from_rocksdb(it->status(), "checking for existing data");
  }
  return true;
}

}  // namespace billing::storage
