// Direct RocksDB access for tests that must see or damage what the store
// wrote, and a file system that fails WAL writes on demand.
#pragma once

#include <doctest/doctest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/rollup_merge.hpp"

namespace billing::storage::testing {

// The database under `path` with all its families (plus `extra_families`,
// created if missing), closed on destruction.
class raw_rocksdb {
 public:
  explicit raw_rocksdb(const std::string& path, std::vector<std::string> extra_families = {}) {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    REQUIRE(rocksdb::DB::ListColumnFamilies(options, path, &names_).ok());
    for (auto& name : extra_families) names_.push_back(std::move(name));
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& name : names_) {
      rocksdb::ColumnFamilyOptions family_options;
      // Without it RocksDB cannot replay a WAL batch holding rollup Merge
      // records and drops the whole batch: every tool must set it.
      if (name == "rollups") family_options.merge_operator = make_rollup_merge_operator();
      descriptors.emplace_back(name, family_options);
    }
    rocksdb::DB* raw = nullptr;
    auto opened = rocksdb::DB::Open(options, path, descriptors, &handles_, &raw);
    REQUIRE_MESSAGE(opened.ok(), opened.ToString());
    db_.reset(raw);
  }
  ~raw_rocksdb() {
    for (auto* handle : handles_) (void)db_->DestroyColumnFamilyHandle(handle);
    (void)db_->Close();
  }
  raw_rocksdb(const raw_rocksdb&) = delete;
  raw_rocksdb& operator=(const raw_rocksdb&) = delete;

  rocksdb::DB& db() { return *db_; }

  rocksdb::ColumnFamilyHandle* family(std::string_view name) const {
    for (size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) return handles_[i];
    }
    FAIL("no column family " << name);
    return nullptr;
  }

  void put(std::string_view family_name, std::string_view key, std::string_view value) {
    rocksdb::WriteOptions durable;
    durable.sync = true;
    REQUIRE(db_->Put(durable, family(family_name), key, value).ok());
  }

  void remove(std::string_view family_name, std::string_view key) {
    rocksdb::WriteOptions durable;
    durable.sync = true;
    REQUIRE(db_->Delete(durable, family(family_name), key).ok());
  }

  std::vector<std::pair<std::string, std::string>> entries(std::string_view family_name) {
    std::vector<std::pair<std::string, std::string>> found;
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions{}, family(family_name)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      found.emplace_back(it->key().ToString(), it->value().ToString());
    }
    REQUIRE(it->status().ok());
    return found;
  }

  const std::vector<std::string>& family_names() const { return names_; }

 private:
  std::vector<std::string> names_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

// Which operation fails while `failing` is set: a WAL append or sync (an
// I/O error), or, as on a full disk, every append to any new file
// (no_space) or to SST files only (no_space_in_sst: flushes, compactions).
enum class wal_fault { append, sync, no_space, no_space_in_sst };

// Wraps the real file system; files fail the chosen operation while the
// shared flag is set.
class faulty_file_system : public rocksdb::FileSystemWrapper {
 public:
  faulty_file_system(wal_fault fault, std::shared_ptr<std::atomic<bool>> failing)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), fault_(fault), failing_(failing) {}

  static const char* kClassName() { return "faulty_file_system"; }
  const char* Name() const override { return kClassName(); }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* file,
                                    rocksdb::IODebugContext* debug) override {
    auto created = target()->NewWritableFile(name, options, file, debug);
    const bool affected = fault_ == wal_fault::no_space          ? true
                          : fault_ == wal_fault::no_space_in_sst ? name.ends_with(".sst")
                                                                 : name.ends_with(".log");
    if (created.ok() && affected) {
      *file = std::make_unique<faulty_file>(std::move(*file), fault_, failing_);
    }
    return created;
  }

 private:
  class faulty_file : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    faulty_file(std::unique_ptr<rocksdb::FSWritableFile> file, wal_fault fault,
                std::shared_ptr<std::atomic<bool>> failing)
        : FSWritableFileOwnerWrapper(std::move(file)), fault_(fault), failing_(failing) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* debug) override {
      if (auto failed = append_fault()) return *failed;
      return FSWritableFileOwnerWrapper::Append(data, options, debug);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* debug) override {
      if (auto failed = append_fault()) return *failed;
      return FSWritableFileOwnerWrapper::Append(data, options, info, debug);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* debug) override {
      if (fails(wal_fault::sync)) return injected();
      return FSWritableFileOwnerWrapper::Sync(options, debug);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* debug) override {
      if (fails(wal_fault::sync)) return injected();
      return FSWritableFileOwnerWrapper::Fsync(options, debug);
    }

   private:
    bool fails(wal_fault operation) const { return operation == fault_ && failing_->load(); }
    static rocksdb::IOStatus injected() { return rocksdb::IOStatus::IOError("injected WAL fault"); }
    std::optional<rocksdb::IOStatus> append_fault() const {
      if (fails(wal_fault::append)) return injected();
      if (failing_->load() &&
          (fault_ == wal_fault::no_space || fault_ == wal_fault::no_space_in_sst)) {
        return rocksdb::IOStatus::NoSpace("injected: no space left on device");
      }
      return std::nullopt;
    }

    wal_fault fault_;
    std::shared_ptr<std::atomic<bool>> failing_;
  };

  wal_fault fault_;
  std::shared_ptr<std::atomic<bool>> failing_;
};

inline std::shared_ptr<rocksdb::Env> faulty_env(wal_fault fault,
                                                std::shared_ptr<std::atomic<bool>> failing) {
  return rocksdb::NewCompositeEnv(std::make_shared<faulty_file_system>(fault, failing));
}

}  // namespace billing::storage::testing
