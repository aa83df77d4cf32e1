#include "storage/ledger_store_impl.hpp"

#include <fmt/format.h>

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
