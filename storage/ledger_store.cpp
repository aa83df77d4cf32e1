#include "storage/ledger_store.hpp"

#include <fmt/format.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <utility>

#include "storage/codec.hpp"
#include "storage/database.hpp"
#include "storage/group_committer.hpp"
#include "storage/keys.hpp"

namespace billing::storage {

// ---- write_set ----

void write_set::put_window(const model::usage_window& window) {
  if (!encode_status_.ok()) return;
  const auto id = model::window_identity::of(window);
  auto window_key = keys::window_key(id);
  auto dedup_key = keys::dedup_key(id);
  if (!window_key || !dedup_key) {
    encode_status_ = window_key ? dedup_key.error() : window_key.error();
    return;
  }
  mutations_.push_back(
      {windows_family, std::move(*window_key), codec::encode_window_value(window), false});
  mutations_.push_back(
      {dedup_family, std::move(*dedup_key), codec::encode_billed_values(window), false});
}

void write_set::put_conflict(const conflict_record& record) {
  if (!encode_status_.ok()) return;
  const int64_t recorded_at_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
  auto key = keys::audit_key_without_sequence(record.attempted.customer_id, recorded_at_ns);
  if (!key) {
    encode_status_ = key.error();
    return;
  }
  mutations_.push_back({audit_family, std::move(*key), codec::encode_conflict(record), true});
}

void write_set::merge_rollups(std::string_view customer_id,
                              const model::rollup_accumulator& rollups) {
  for (const auto& [id, value] : rollups.buckets()) {
    if (!encode_status_.ok()) return;
    auto key = keys::rollup_key(customer_id, id);
    if (!key) {
      encode_status_ = key.error();
      return;
    }
    mutations_.push_back(
        {rollups_family, std::move(*key), codec::encode_rollup_value(value), false, true});
  }
}

void write_set::put(uint32_t family, result<std::string> key, std::string value) {
  if (!encode_status_.ok()) return;
  if (!key) {
    encode_status_ = key.error();
    return;
  }
  mutations_.push_back({family, std::move(*key), std::move(value), false});
}

void write_set::put_vm_state(std::string_view customer_id, std::string_view vm_id,
                             const model::vm_state& state) {
  put(vm_state_family, keys::vm_state_key(customer_id, vm_id), codec::encode_vm_state(state));
  put(vm_index_family, keys::vm_index_key(vm_id), codec::encode_vm_index(customer_id));
}

void write_set::put_metald_gap(std::string_view customer_id, std::string_view vm_id,
                               std::string_view region, const model::metald_gap& gap) {
  put(metald_gaps_family, keys::metald_gap_key(customer_id, vm_id, gap),
      codec::encode_metald_gap(region));
}

void write_set::put_metald_instance(std::string_view instance_id,
                                    const model::metald_instance& instance) {
  put(metald_instances_family, keys::metald_instance_key(instance_id),
      codec::encode_metald_instance(instance));
}

// ---- ledger_store ----

struct ledger_store::impl {
  impl(std::unique_ptr<database> opened, bool sync_writes)
      : db(std::move(opened)),
        write_options(make_write_options(sync_writes)),
        // RocksDB's sequence number only grows, also across restarts, and
        // grows by at least one per put; audit sequences start above it and
        // advance only for committed puts, so they never repeat.
        next_audit_sequence(db->db().GetLatestSequenceNumber() + 1),
        committer([this](std::span<pending_commit> group) { write_group(group); }) {}

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
  // Calls `visit(key without the prefix, value)` for every key of `which`
  // starting with `prefix`, in key order, until it fails or answers false.
  status scan_prefix(family which, const std::string& prefix, std::string_view context,
                     const std::function<result<bool>(std::string_view rest,
                                                      std::string_view value)>& visit) const;
  // The value under `key` in `which`, nullopt when absent.
  result<std::optional<std::string>> get(family which, const std::string& key,
                                         std::string_view context) const;
  status add_to_batch(rocksdb::WriteBatch& batch, const write_set& writes, uint64_t& sequence);

  std::unique_ptr<database> db;
  rocksdb::WriteOptions write_options;
  std::atomic<uint64_t> synced_writes{0};
  uint64_t next_audit_sequence;  // committer thread only
  std::mutex backup_mutex;       // one BackupEngine per directory at a time
  std::optional<group_committer> committer;
};

status ledger_store::impl::add_to_batch(rocksdb::WriteBatch& batch, const write_set& writes,
                                        uint64_t& sequence) {
  for (const auto& mutation : writes.mutations()) {
    if (mutation.family >= family_names.size()) {
      return {status_code::internal, fmt::format("no column family {}", mutation.family)};
    }
    auto* handle = db->handle(static_cast<family>(mutation.family));
    rocksdb::Status added;
    if (mutation.merge) {
      added = batch.Merge(handle, mutation.key, mutation.value);
    } else if (mutation.append_audit_sequence) {
      std::string key = mutation.key;
      keys::append_audit_sequence(key, sequence++);
      added = batch.Put(handle, key, mutation.value);
    } else {
      added = batch.Put(handle, mutation.key, mutation.value);
    }
    if (!added.ok()) return from_rocksdb(added, "building the write batch");
  }
  return status::ok_status();
}

void ledger_store::impl::write_group(std::span<pending_commit> group) {
  rocksdb::WriteBatch batch;
  std::vector<pending_commit*> in_batch;
  in_batch.reserve(group.size());
  uint64_t sequence = next_audit_sequence;
  for (auto& commit : group) {
    if (!commit.writes.encode_status().ok()) {
      commit.outcome = commit.writes.encode_status();
      continue;
    }
    if (commit.writes.empty()) {
      commit.outcome = status::ok_status();
      continue;
    }
    // A write_set that cannot be added leaves no trace in the batch and does
    // not affect the others.
    batch.SetSavePoint();
    const uint64_t sequence_before = sequence;
    if (auto added = add_to_batch(batch, commit.writes, sequence); !added.ok()) {
      (void)batch.RollbackToSavePoint();
      sequence = sequence_before;
      commit.outcome = std::move(added);
      continue;
    }
    (void)batch.PopSavePoint();
    in_batch.push_back(&commit);
  }
  if (in_batch.empty()) return;

  auto written = db->db().Write(write_options, &batch);
  synced_writes.fetch_add(1);
  const auto outcome =
      from_rocksdb(written, fmt::format("committing {} write sets", in_batch.size()));
  if (outcome.ok()) next_audit_sequence = sequence;
  for (auto* commit : in_batch) commit->outcome = outcome;
}

result<std::optional<std::string>> ledger_store::impl::get(family which, const std::string& key,
                                                           std::string_view context) const {
  std::string value;
  auto read = db->db().Get(rocksdb::ReadOptions{}, db->handle(which), key, &value);
  if (read.IsNotFound()) return std::optional<std::string>{};
  if (!read.ok()) return from_rocksdb(read, context);
  return std::optional<std::string>{std::move(value)};
}

status ledger_store::impl::scan_prefix(
    family which, const std::string& prefix, std::string_view context,
    const std::function<result<bool>(std::string_view rest, std::string_view value)>& visit) const {
  const auto successor = keys::prefix_successor(prefix);
  std::optional<rocksdb::Slice> upper_bound;
  rocksdb::ReadOptions read_options;
  if (successor) {
    upper_bound.emplace(*successor);
    read_options.iterate_upper_bound = &*upper_bound;
  }
  std::unique_ptr<rocksdb::Iterator> it(db->db().NewIterator(read_options, db->handle(which)));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto more = visit(it->key().ToStringView().substr(prefix.size()), it->value().ToStringView());
    if (!more) return more.error();
    if (!more.value()) return status::ok_status();
  }
  return from_rocksdb(it->status(), context);
}

ledger_store::ledger_store(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}

ledger_store::~ledger_store() = default;

result<std::shared_ptr<ledger_store>> ledger_store::open(const store_options& options) {
  auto opened = database::open(options);
  if (!opened) return opened.error();
  auto state = std::make_unique<impl>(std::move(*opened), options.sync_writes);
  // The constructor is private, so make_shared cannot reach it.
  return std::shared_ptr<ledger_store>(new ledger_store(std::move(state)));
}

void ledger_store::commit(write_set writes, std::function<void(status)> on_done) {
  impl_->committer->submit(std::move(writes), std::move(on_done));
}

result<backup_info> ledger_store::create_backup(const std::string& backup_dir) {
  std::unique_lock running(impl_->backup_mutex, std::try_to_lock);
  if (!running.owns_lock()) {
    return status{status_code::aborted, "another backup is running; retry when it has finished"};
  }
  return back_up(impl_->db->db(), backup_dir);
}

commit_stats ledger_store::stats() const {
  return {impl_->committer->commits_requested(), impl_->synced_writes.load()};
}

result<std::vector<std::optional<model::usage_window>>> ledger_store::find_stored(
    const std::vector<model::window_identity>& identities) const {
  std::vector<std::optional<model::usage_window>> found;
  if (identities.empty()) return found;

  std::vector<std::string> keys;
  keys.reserve(identities.size());
  for (const auto& id : identities) {
    auto key = keys::dedup_key(id);
    if (!key) return key.error();
    keys.push_back(std::move(*key));
  }
  std::vector<rocksdb::Slice> key_slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  impl_->db->db().MultiGet(rocksdb::ReadOptions{}, impl_->db->handle(dedup_family), keys.size(),
                           key_slices.data(), values.data(), statuses.data());

  found.reserve(identities.size());
  for (size_t i = 0; i < identities.size(); ++i) {
    if (statuses[i].IsNotFound()) {
      found.emplace_back(std::nullopt);
      continue;
    }
    if (!statuses[i].ok()) return from_rocksdb(statuses[i], "reading the dedup index");
    auto stored = codec::decode_billed_values(identities[i], values[i].ToStringView());
    if (!stored) return stored.error();
    found.emplace_back(std::move(*stored));
  }
  return found;
}

status ledger_store::scan_windows(
    const std::string& customer_id, int64_t from_ns, int64_t to_ns,
    const std::function<bool(const model::usage_window&)>& visit) const {
  auto lower = keys::window_scan_bound(customer_id, from_ns);
  if (!lower) return lower.error();
  auto upper = keys::window_scan_bound(customer_id, to_ns);
  if (!upper) return upper.error();
  if (from_ns >= to_ns) return status::ok_status();

  // A window starting at to_ns has a key longer than, hence above, `upper`.
  const rocksdb::Slice upper_bound(*upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper_bound;
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->db().NewIterator(read_options, impl_->db->handle(windows_family)));
  for (it->Seek(*lower); it->Valid(); it->Next()) {
    auto id = keys::decode_window_key(it->key().ToStringView());
    if (!id) return id.error();
    auto window = codec::decode_window_value(*id, it->value().ToStringView());
    if (!window) return window.error();
    if (!visit(*window)) return status::ok_status();
  }
  return from_rocksdb(it->status(), fmt::format("scanning the windows of '{}'", customer_id));
}

status ledger_store::scan_rollups(
    const std::string& customer_id, model::granularity grain, int64_t from_ns, int64_t to_ns,
    const std::function<bool(const model::rollup_id&, const model::rollup_value&)>& visit) const {
  auto lower = keys::rollup_scan_bound(customer_id, grain, from_ns);
  if (!lower) return lower.error();
  auto upper = keys::rollup_scan_bound(customer_id, grain, to_ns);
  if (!upper) return upper.error();
  if (from_ns >= to_ns) return status::ok_status();

  const rocksdb::Slice upper_bound(*upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper_bound;
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->db().NewIterator(read_options, impl_->db->handle(rollups_family)));
  for (it->Seek(*lower); it->Valid(); it->Next()) {
    auto id = keys::decode_rollup_key(it->key().ToStringView());
    if (!id) return id.error();
    auto value = codec::decode_rollup_value(it->value().ToStringView());
    if (!value) return value.error();
    if (!visit(*id, *value)) return status::ok_status();
  }
  return from_rocksdb(it->status(), fmt::format("scanning the rollups of '{}'", customer_id));
}

status ledger_store::apply_retention() {
  rocksdb::CompactRangeOptions options;
  // The bottommost level too: that is where old windows end up.
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto which : {windows_family, dedup_family}) {
    auto compacted =
        impl_->db->db().CompactRange(options, impl_->db->handle(which), nullptr, nullptr);
    if (!compacted.ok()) return from_rocksdb(compacted, "applying raw-window retention");
  }
  return status::ok_status();
}

status ledger_store::scan_conflicts(
    const std::string& customer_id,
    const std::function<bool(const conflict_record&)>& visit) const {
  auto prefix = keys::customer_prefix(customer_id);
  if (!prefix) return prefix.error();
  constexpr size_t key_rest_size = 16;  // recorded_at + sequence
  return impl_->scan_prefix(
      audit_family, *prefix, fmt::format("scanning the conflicts of '{}'", customer_id),
      [&](std::string_view rest, std::string_view value) -> result<bool> {
        if (rest.size() != key_rest_size) {
          return status{status_code::data_loss,
                        fmt::format("corrupt audit key: {} bytes, expected {}",
                                    prefix->size() + rest.size(), prefix->size() + key_rest_size)};
        }
        auto record = codec::decode_conflict(value);
        if (!record) return record.error();
        return visit(*record);
      });
}

namespace {

// Decodes a point read's value with `decode`, keeping "absent" apart.
template <class T, class Decode>
result<std::optional<T>> decode_found(result<std::optional<std::string>> found, Decode decode) {
  if (!found) return found.error();
  if (!found.value()) return std::optional<T>{};
  auto decoded = decode(*found.value());
  if (!decoded) return decoded.error();
  return std::optional<T>{std::move(decoded.value())};
}

}  // namespace

result<std::optional<model::vm_state>> ledger_store::find_vm_state(std::string_view customer_id,
                                                                   std::string_view vm_id) const {
  auto key = keys::vm_state_key(customer_id, vm_id);
  if (!key) return key.error();
  return decode_found<model::vm_state>(impl_->get(vm_state_family, *key, "reading a vm state"),
                                       codec::decode_vm_state);
}

result<std::optional<std::string>> ledger_store::find_vm_customer(std::string_view vm_id) const {
  auto key = keys::vm_index_key(vm_id);
  if (!key) return key.error();
  return decode_found<std::string>(impl_->get(vm_index_family, *key, "reading the vm index"),
                                   codec::decode_vm_index);
}

result<std::optional<model::metald_instance>> ledger_store::find_metald_instance(
    std::string_view instance_id) const {
  auto key = keys::metald_instance_key(instance_id);
  if (!key) return key.error();
  return decode_found<model::metald_instance>(
      impl_->get(metald_instances_family, *key, "reading a metald instance"),
      codec::decode_metald_instance);
}

status ledger_store::scan_vm_states(
    const std::string& customer_id,
    const std::function<bool(const std::string&, const model::vm_state&)>& visit) const {
  auto prefix = keys::customer_prefix(customer_id);
  if (!prefix) return prefix.error();
  return impl_->scan_prefix(
      vm_state_family, *prefix, fmt::format("scanning the vm states of '{}'", customer_id),
      [&](std::string_view vm_part, std::string_view value) -> result<bool> {
        if (vm_part.empty() || static_cast<uint8_t>(vm_part[0]) + size_t{1} != vm_part.size()) {
          return status{status_code::data_loss, "corrupt vm_state key"};
        }
        auto state = codec::decode_vm_state(value);
        if (!state) return state.error();
        return visit(std::string(vm_part.substr(1)), *state);
      });
}

status ledger_store::scan_metald_instances(
    const std::function<bool(const std::string&, const model::metald_instance&)>& visit) const {
  return impl_->scan_prefix(
      metald_instances_family, "", "scanning the metald instances",
      [&](std::string_view key, std::string_view value) -> result<bool> {
        if (key.empty() || static_cast<uint8_t>(key[0]) + size_t{1} != key.size()) {
          return status{status_code::data_loss, "corrupt metald_instances key"};
        }
        auto instance = codec::decode_metald_instance(value);
        if (!instance) return instance.error();
        return visit(std::string(key.substr(1)), *instance);
      });
}

status ledger_store::scan_metald_gaps(
    const std::string& customer_id, int64_t from_ns, int64_t to_ns,
    const std::function<bool(const std::string&, const std::string&, const model::metald_gap&)>&
        visit) const {
  // Gaps are few and may be long: scan the customer's gaps starting before
  // to_ns and keep those that end after from_ns.
  auto lower = keys::customer_prefix(customer_id);
  if (!lower) return lower.error();
  auto upper = *lower;
  keys::append_timestamp(upper, to_ns);
  const rocksdb::Slice upper_bound(upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper_bound;
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->db().NewIterator(read_options, impl_->db->handle(metald_gaps_family)));
  for (it->Seek(*lower); it->Valid(); it->Next()) {
    auto decoded = keys::decode_metald_gap_key(it->key().ToStringView());
    if (!decoded) return decoded.error();
    if (decoded->second.end_ns <= from_ns) continue;
    auto region = codec::decode_metald_gap(it->value().ToStringView());
    if (!region) return region.error();
    if (!visit(decoded->first, *region, decoded->second)) return status::ok_status();
  }
  return from_rocksdb(it->status(), fmt::format("scanning the metald gaps of '{}'", customer_id));
}

}  // namespace billing::storage
