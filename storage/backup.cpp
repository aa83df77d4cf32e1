#include "storage/backup.hpp"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/utilities/backup_engine.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "storage/database.hpp"

namespace billing::storage {
namespace {

backup_info info_of(const rocksdb::BackupInfo& info) {
  return backup_info{info.backup_id, info.timestamp, info.size, info.number_files};
}

// The newest backup's info, or not_found.
result<backup_info> latest_info(rocksdb::BackupEngineReadOnlyBase& engine, const std::string& dir) {
  std::vector<rocksdb::BackupInfo> infos;
  engine.GetBackupInfo(&infos);
  if (infos.empty()) return status{status_code::not_found, fmt::format("no backup in {}", dir)};
  return info_of(infos.back());
}

}  // namespace

result<backup_info> back_up(rocksdb::DB& db, const std::string& backup_dir) {
  rocksdb::BackupEngine* raw_engine = nullptr;
  const rocksdb::BackupEngineOptions engine_options(backup_dir);
  auto opened = rocksdb::BackupEngine::Open(engine_options, rocksdb::Env::Default(), &raw_engine);
  if (!opened.ok()) return from_rocksdb(opened, "opening the backup directory " + backup_dir);
  const std::unique_ptr<rocksdb::BackupEngine> engine(raw_engine);
  rocksdb::CreateBackupOptions create_options;
  create_options.flush_before_backup = true;
  rocksdb::BackupID id = 0;
  auto created = engine->CreateNewBackup(create_options, &db, &id);
  if (!created.ok()) return from_rocksdb(created, "creating a backup in " + backup_dir);
  auto verified = engine->VerifyBackup(id, /*verify_with_checksum=*/true);
  if (!verified.ok()) return from_rocksdb(verified, fmt::format("verifying backup {}", id));
  rocksdb::BackupInfo info;
  auto described = engine->GetBackupInfo(id, &info);
  if (!described.ok()) return from_rocksdb(described, fmt::format("describing backup {}", id));
  return info_of(info);
}

result<backup_info> restore_latest(const std::string& backup_dir, const std::string& data_dir) {
  std::error_code ec;
  if (std::filesystem::exists(data_dir, ec) && !std::filesystem::is_empty(data_dir, ec)) {
    return status{
        status_code::failed_precondition,
        fmt::format("{} is not empty; restore only into a new or empty directory", data_dir)};
  }
  if (!std::filesystem::is_directory(backup_dir, ec)) {
    return status{status_code::not_found, fmt::format("no backup directory {}", backup_dir)};
  }
  rocksdb::BackupEngineReadOnly* raw_engine = nullptr;
  const rocksdb::BackupEngineOptions engine_options(backup_dir);
  auto opened =
      rocksdb::BackupEngineReadOnly::Open(engine_options, rocksdb::Env::Default(), &raw_engine);
  if (!opened.ok()) return from_rocksdb(opened, "opening the backup directory " + backup_dir);
  const std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw_engine);
  auto latest = latest_info(*engine, backup_dir);
  if (!latest.ok()) return latest;
  auto verified = engine->VerifyBackup(latest.value().backup_id, /*verify_with_checksum=*/true);
  if (!verified.ok()) {
    return from_rocksdb(verified, fmt::format("verifying backup {}", latest.value().backup_id));
  }
  auto restored = engine->RestoreDBFromLatestBackup(data_dir, data_dir);
  if (!restored.ok()) return from_rocksdb(restored, "restoring into " + data_dir);
  return latest;
}

}  // namespace billing::storage
