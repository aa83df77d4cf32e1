// Online backups of the ledger with RocksDB's BackupEngine, and restore into
// an empty data directory. A backup is consistent (one point in the write
// order) and holds every commit acknowledged before it started, because the
// engine flushes the memtables first and acknowledged commits are already in
// the synced WAL.
#pragma once

#include <cstdint>
#include <string>

#include "model/status.hpp"

namespace rocksdb {
class DB;
}

namespace billing::storage {

struct backup_info {
  uint32_t backup_id = 0;
  int64_t created_at_unix_seconds = 0;
  uint64_t size_bytes = 0;
  uint32_t file_count = 0;
};

// Creates a new backup of `db` in `backup_dir` (created if missing) and
// verifies its checksums. Blocking; the caller serializes calls per directory.
result<backup_info> back_up(rocksdb::DB& db, const std::string& backup_dir);

// Restores the latest backup in `backup_dir` into `data_dir`, which must not
// exist or be empty: a restore never overwrites a ledger. Verifies the backup
// first; failed_precondition for a non-empty target, not_found for no backup.
result<backup_info> restore_latest(const std::string& backup_dir, const std::string& data_dir);

}  // namespace billing::storage
