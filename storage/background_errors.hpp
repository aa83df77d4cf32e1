// RocksDB's background errors (a flush or compaction that failed, e.g. on a
// full disk), kept for the store's committer thread, which pauses writes and
// reopens the database (ledger_store.cpp) instead of letting RocksDB resume
// in-process.
#pragma once

#include <fmt/format.h>
#include <rocksdb/listener.h>

#include <mutex>
#include <optional>
#include <utility>

#include "model/status.hpp"
#include "storage/database.hpp"

namespace billing::storage {

class background_errors final : public rocksdb::EventListener {
 public:
  const char* Name() const override { return "billing.background_errors"; }

  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) override {
    if (error == nullptr || error->ok()) return;
    std::lock_guard lock(mutex_);
    if (!first_)
      first_ = from_rocksdb(*error, fmt::format("RocksDB's background {}", name(reason)));
  }

  // RocksDB 7.8 would call DB::Resume() once its SstFileManager sees free
  // space; after a failed WAL write that leaves the WAL writer in its error
  // state, and the next write trips the assertion that aborts the process
  // (facebook/rocksdb#11643). The store's own reopen covers every case.
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status error,
                            bool* auto_recovery) override {
    error.PermitUncheckedError();
    if (auto_recovery != nullptr) *auto_recovery = false;
  }

  // The first error since the last take(), if any.
  std::optional<status> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(first_, std::nullopt);
  }

 private:
  static const char* name(rocksdb::BackgroundErrorReason reason) {
    switch (reason) {
      case rocksdb::BackgroundErrorReason::kFlush:
      case rocksdb::BackgroundErrorReason::kFlushNoWAL:
        return "flush";
      case rocksdb::BackgroundErrorReason::kCompaction:
        return "compaction";
      case rocksdb::BackgroundErrorReason::kWriteCallback:
        return "WAL write";
      case rocksdb::BackgroundErrorReason::kManifestWrite:
      case rocksdb::BackgroundErrorReason::kManifestWriteNoWAL:
        return "MANIFEST write";
      default:
        return "work";
    }
  }

  std::mutex mutex_;
  std::optional<status> first_;  // guarded by mutex_
};

}  // namespace billing::storage
