// The RocksDB instance behind a ledger_store: tuned options, column families,
// schema version check, and the mapping of rocksdb::Status to billing::status.
#pragma once

#include <rocksdb/db.h>

#include <memory>
#include <string_view>
#include <vector>

#include "model/status.hpp"
#include "storage/keys.hpp"
#include "storage/ledger_store.hpp"

namespace billing::storage {

// `context` says what was being done, e.g. "reading the dedup index".
status from_rocksdb(const rocksdb::Status& rocks_status, std::string_view context);

class database {
 public:
  // Opens or creates the database and checks (or, when new, writes) its schema
  // version. On any error nothing stays open.
  static result<std::unique_ptr<database>> open(const store_options& options);

  // Only open() can make one (passkey), so every instance passed the checks.
  class open_key {
    friend class database;
    open_key() = default;
  };
  database(open_key, std::shared_ptr<rocksdb::Env> env, std::unique_ptr<rocksdb::DB> db,
           std::vector<rocksdb::ColumnFamilyHandle*> handles);

  ~database();  // releases the family handles, then closes the DB
  database(const database&) = delete;
  database& operator=(const database&) = delete;

  rocksdb::DB& db() { return *db_; }
  rocksdb::ColumnFamilyHandle* handle(family which) const { return handles_[which]; }

 private:
  status check_schema_version();
  result<bool> families_are_empty();

  std::shared_ptr<rocksdb::Env> env_;  // null or used by db_: must outlive it
  std::unique_ptr<rocksdb::DB> db_;
  // Our families in `family` order, then any unknown ones found on disk; owned
  // by this object (released through db_ before it closes).
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace billing::storage
