// The RocksDB instance behind a ledger_store: tuned options, column families,
// schema version check, and the mapping of rocksdb::Status to billing::status.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/listener.h>

#include <memory>
#include <string_view>
#include <vector>

#include "model/status.hpp"
#include "storage/keys.hpp"
#include "storage/ledger_store.hpp"

namespace billing::storage {

// `context` says what was being done, e.g. "reading the dedup index".
status from_rocksdb(const rocksdb::Status& rocks_status, std::string_view context);

struct open_settings {
  // Reads only, writing nothing to the data directory: what the store serves
  // while its volume is full (it replays the WAL into memory, like a reopen
  // for writes would).
  bool read_only = false;
  // Told of RocksDB's background errors (a flush or compaction failing).
  std::shared_ptr<rocksdb::EventListener> listener;
};

class database {
 public:
  // Opens or creates the database and checks (or, when new, writes) its schema
  // version. On any error nothing stays open.
  static result<std::unique_ptr<database>> open(const store_options& options,
                                                const open_settings& settings = {});

  // Only open() can make one (passkey), so every instance passed the checks.
  class open_key {
    friend class database;
    open_key() = default;
  };
  database(open_key, std::shared_ptr<rocksdb::Env> env, std::unique_ptr<rocksdb::DB> db,
           std::vector<rocksdb::ColumnFamilyHandle*> handles, bool read_only);

  ~database();  // releases the family handles, then closes the DB
  database(const database&) = delete;
  database& operator=(const database&) = delete;

  rocksdb::DB& db() { return *db_; }
  rocksdb::ColumnFamilyHandle* handle(family which) const { return handles_[which]; }
  bool read_only() const { return read_only_; }
  // Close without the flush that spares the next open a long WAL replay:
  // after a storage error it would only fail (or fill the disk further).
  void skip_flush_on_close() { flush_on_close_ = false; }

 private:
  status check_schema_version();
  result<bool> families_are_empty();

  std::shared_ptr<rocksdb::Env> env_;  // null or used by db_: must outlive it
  std::unique_ptr<rocksdb::DB> db_;
  // Our families in `family` order, then any unknown ones found on disk; owned
  // by this object (released through db_ before it closes).
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  bool read_only_;
  bool flush_on_close_;
};

}  // namespace billing::storage
