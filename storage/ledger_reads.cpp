// Point reads and scans of ledger_store, on the open database or a snapshot.
#include "storage/ledger_store_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

#include "model/calendar.hpp"
#include "storage/bytes.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace billing::storage {

status iterate_range(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family, const rocksdb::Snapshot* snapshot,
    std::string_view lower, const std::optional<std::string>& upper, std::string_view what,
    const std::function<result<bool>(std::string_view key, std::string_view value)>& visit) {
  std::optional<rocksdb::Slice> upper_bound;
  rocksdb::ReadOptions read_options;
  if (upper) {
    upper_bound.emplace(*upper);
    read_options.iterate_upper_bound = &*upper_bound;
  }
  read_options.snapshot = snapshot;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read_options, family));
  for (it->Seek(rocksdb::Slice(lower.data(), lower.size())); it->Valid(); it->Next()) {
    auto go_on = visit(it->key().ToStringView(), it->value().ToStringView());
    if (!go_on.ok()) return go_on.error();
    if (!go_on.value()) return status::ok_status();
  }
  return from_rocksdb(it->status(), what);
}

template <class T, class Decode>
result<std::vector<std::optional<T>>> ledger_store::multi_get(uint32_t which,
                                                              const std::vector<std::string>& keys,
                                                              std::string_view context,
                                                              Decode&& decode) const {
  std::vector<std::optional<T>> found;
  if (keys.empty()) return found;
  std::vector<rocksdb::Slice> key_slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  const status read = impl_->read_db([&](database& db) {
    db.db().MultiGet(rocksdb::ReadOptions{}, db.handle(static_cast<family>(which)), keys.size(),
                     key_slices.data(), values.data(), statuses.data());
    return status::ok_status();
  });
  if (!read.ok()) return read;
  found.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) {
      found.emplace_back(std::nullopt);
      continue;
    }
    if (!statuses[i].ok()) return from_rocksdb(statuses[i], context);
    result<T> value = decode(i, values[i].ToStringView());
    if (!value) return value.error();
    found.emplace_back(std::move(*value));
  }
  return found;
}

result<std::vector<std::optional<model::usage_window>>> ledger_store::find_stored(
    const std::vector<model::window_identity>& identities) const {
  std::vector<std::string> keys;
  keys.reserve(identities.size());
  for (const auto& id : identities) {
    auto key = keys::window_key(id);
    if (!key) return key.error();
    keys.push_back(std::move(*key));
  }
  return multi_get<model::usage_window>(windows_family, keys, "looking up stored windows",
                                        [&](size_t i, std::string_view value) {
                                          return codec::decode_window_value(identities[i], value);
                                        });
}

result<std::vector<std::optional<model::rollup_value>>> ledger_store::find_rollups(
    std::string_view customer_id, const std::vector<model::rollup_id>& ids) const {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const auto& id : ids) {
    auto key = keys::rollup_key(customer_id, id);
    if (!key) return key.error();
    keys.push_back(std::move(*key));
  }
  return multi_get<model::rollup_value>(
      rollups_family, keys, "reading rollup totals",
      [](size_t, std::string_view value) { return codec::decode_rollup_value(value); });
}

status ledger_store::with_snapshot(const std::function<status(const snapshot_view&)>& reads) const {
  return impl_->read_db([&](database& db) {
    const rocksdb::Snapshot* snapshot = db.db().GetSnapshot();
    status done = reads(snapshot_view{db, snapshot});
    db.db().ReleaseSnapshot(snapshot);
    return done;
  });
}

// Runs `scan` on the database: the snapshot's (whose read lock the caller
// holds already) or, without one, under the read lock.
template <class Scan>
status ledger_store::read_at(const snapshot_view* at, Scan&& scan) const {
  if (at != nullptr) return scan(at->db_, at->snapshot_);
  return impl_->read_db([&](database& db) { return scan(db, nullptr); });
}

status ledger_store::scan_windows(const std::string& customer_id, int64_t from_ns, int64_t to_ns,
                                  const std::function<bool(model::usage_window&)>& visit,
                                  const snapshot_view* at) const {
  status decoded = status::ok_status();
  status scanned = scan_stored_windows(
      customer_id, from_ns, to_ns,
      [&](const stored_window& stored) {
        auto window = stored.decode();
        if (!window) decoded = window.error();
        return window.ok() && visit(*window);
      },
      at);
  return scanned.ok() ? decoded : scanned;
}

status ledger_store::scan_stored_windows(const std::string& customer_id, int64_t from_ns,
                                         int64_t to_ns,
                                         const std::function<bool(const stored_window&)>& visit,
                                         const snapshot_view* at) const {
  auto lower = keys::window_scan_bound(customer_id, from_ns);
  if (!lower) return lower.error();
  auto upper = keys::window_scan_bound(customer_id, to_ns);
  if (!upper) return upper.error();
  if (from_ns >= to_ns) return status::ok_status();
  // A window starting at to_ns has a key longer than, hence above, `upper`.
  return read_at(at, [&](database& db, const rocksdb::Snapshot* snapshot) {
    return iterate_range(db.db(), db.handle(windows_family), snapshot, *lower, *upper,
                         fmt::format("scanning the windows of '{}'", customer_id),
                         [&](std::string_view key, std::string_view value) -> result<bool> {
                           auto id = keys::parse_window_key(key);
                           if (!id) return id.error();
                           return visit(stored_window{id.value(), value});
                         });
  });
}

status ledger_store::scan_rollups(
    const std::string& customer_id, model::granularity grain, int64_t from_ns, int64_t to_ns,
    const std::function<bool(const model::rollup_id&, const model::rollup_value&)>& visit,
    const snapshot_view* at) const {
  auto lower = keys::rollup_scan_bound(customer_id, grain, from_ns);
  if (!lower) return lower.error();
  auto upper = keys::rollup_scan_bound(customer_id, grain, to_ns);
  if (!upper) return upper.error();
  if (from_ns >= to_ns) return status::ok_status();
  return read_at(at, [&](database& db, const rocksdb::Snapshot* snapshot) {
    return iterate_range(db.db(), db.handle(rollups_family), snapshot, *lower, *upper,
                         fmt::format("scanning the rollups of '{}'", customer_id),
                         [&](std::string_view key, std::string_view value) -> result<bool> {
                           auto id = keys::decode_rollup_key(key);
                           if (!id) return id.error();
                           auto decoded = codec::decode_rollup_value(value);
                           if (!decoded) return decoded.error();
                           return visit(*id, *decoded);
                         });
  });
}

status ledger_store::scan_range(
    uint32_t which, std::string_view lower, const std::optional<std::string>& upper,
    const std::function<bool(std::string_view key, std::string_view value)>& visit,
    const snapshot_view* at) const {
  if (which >= family_names.size()) {
    return {status_code::internal, fmt::format("no column family {}", which)};
  }
  return read_at(at, [&](database& db, const rocksdb::Snapshot* snapshot) {
    return iterate_range(db.db(), db.handle(static_cast<family>(which)), snapshot, lower, upper,
                         fmt::format("scanning {}", family_names[which]),
                         [&](std::string_view key, std::string_view value) -> result<bool> {
                           return visit(key, value);
                         });
  });
}

result<std::optional<std::string>> ledger_store::get(uint32_t which, std::string_view key,
                                                     const snapshot_view* at) const {
  if (which >= family_names.size()) {
    return status{status_code::internal, fmt::format("no column family {}", which)};
  }
  const std::string context = fmt::format("reading {}", family_names[which]);
  if (at == nullptr) return impl_->get(static_cast<family>(which), key, context);
  std::string value;
  rocksdb::ReadOptions options;
  options.snapshot = at->snapshot_;
  auto found = at->db_.db().Get(options, at->db_.handle(static_cast<family>(which)),
                                rocksdb::Slice(key.data(), key.size()), &value);
  if (found.IsNotFound()) return std::optional<std::string>{};
  if (!found.ok()) return from_rocksdb(found, context);
  return std::optional<std::string>{std::move(value)};
}

status ledger_store::apply_retention() {
  rocksdb::CompactRangeOptions options;
  // The bottommost level too: that is where old windows end up.
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  return impl_->read_db([&](database& db) {
    for (auto which : {windows_family, dedup_family}) {
      auto compacted = db.db().CompactRange(options, db.handle(which), nullptr, nullptr);
      if (!compacted.ok()) return from_rocksdb(compacted, "applying raw-window retention");
    }
    return status::ok_status();
  });
}

status ledger_store::scan_audit(
    const std::string& customer_id,
    const std::function<status(std::string_view value, bool& go_on)>& visit) const {
  auto prefix = keys::customer_prefix(customer_id);
  if (!prefix) return prefix.error();
  constexpr size_t key_rest_size = 16;  // recorded_at + sequence
  return impl_->scan_prefix(
      audit_family, *prefix, fmt::format("scanning the audit trail of '{}'", customer_id),
      [&](std::string_view rest, std::string_view value) -> result<bool> {
        if (rest.size() != key_rest_size) {
          return status{status_code::data_loss,
                        fmt::format("corrupt audit key: {} bytes, expected {}",
                                    prefix->size() + rest.size(), prefix->size() + key_rest_size)};
        }
        bool go_on = true;
        if (status visited = visit(value, go_on); !visited.ok()) return visited;
        return go_on;
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

namespace {

// The name in a "<u8 length><name>" key part; nullopt when the length
// disagrees with the part (a corrupt key).
std::optional<std::string_view> length_prefixed(std::string_view part) {
  if (part.empty() || static_cast<uint8_t>(part[0]) + size_t{1} != part.size()) {
    return std::nullopt;
  }
  return part.substr(1);
}

}  // namespace

status ledger_store::scan_vm_states(
    const std::string& customer_id,
    const std::function<bool(const std::string&, const model::vm_state&)>& visit) const {
  auto prefix = keys::customer_prefix(customer_id);
  if (!prefix) return prefix.error();
  return impl_->scan_prefix(vm_state_family, *prefix,
                            fmt::format("scanning the vm states of '{}'", customer_id),
                            [&](std::string_view vm_part, std::string_view value) -> result<bool> {
                              auto vm_id = length_prefixed(vm_part);
                              if (!vm_id)
                                return status{status_code::data_loss, "corrupt vm_state key"};
                              auto state = codec::decode_vm_state(value);
                              if (!state) return state.error();
                              return visit(std::string(*vm_id), *state);
                            });
}

status ledger_store::scan_all_vm_states(
    const std::function<bool(const std::string&, const std::string&, const model::vm_state&)>&
        visit) const {
  return impl_->scan_prefix(
      vm_state_family, "", "scanning every vm state",
      [&](std::string_view key, std::string_view value) -> result<bool> {
        // <u8 length><customer><u8 length><vm>
        const size_t customer_length = key.empty() ? 0 : static_cast<uint8_t>(key[0]);
        if (key.empty() || key.size() < customer_length + 2 ||
            static_cast<uint8_t>(key[customer_length + 1]) + customer_length + 2 != key.size()) {
          return status{status_code::data_loss, "corrupt vm_state key"};
        }
        auto state = codec::decode_vm_state(value);
        if (!state) return state.error();
        return visit(std::string(key.substr(1, customer_length)),
                     std::string(key.substr(customer_length + 2)), *state);
      });
}

status ledger_store::scan_metald_instances(
    const std::function<bool(const std::string&, const model::metald_instance&)>& visit) const {
  return impl_->scan_prefix(
      metald_instances_family, "", "scanning the metald instances",
      [&](std::string_view key, std::string_view value) -> result<bool> {
        auto instance_id = length_prefixed(key);
        if (!instance_id) return status{status_code::data_loss, "corrupt metald_instances key"};
        auto instance = codec::decode_metald_instance(value);
        if (!instance) return instance.error();
        return visit(std::string(*instance_id), *instance);
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
  return impl_->read_db([&](database& db) {
    return iterate_range(db.db(), db.handle(metald_gaps_family), nullptr, *lower, upper,
                         fmt::format("scanning the metald gaps of '{}'", customer_id),
                         [&](std::string_view key, std::string_view value) -> result<bool> {
                           auto decoded = keys::decode_metald_gap_key(key);
                           if (!decoded) return decoded.error();
                           if (decoded->second.end_ns <= from_ns) return true;
                           auto region = codec::decode_metald_gap(value);
                           if (!region) return region.error();
                           return visit(decoded->first, *region, decoded->second);
                         });
  });
}

// The audit family holds several kinds of entries; each kind's format byte
// tells them apart.
status ledger_store::scan_conflicts(
    const std::string& customer_id,
    const std::function<bool(const conflict_record&)>& visit) const {
  return scan_audit(customer_id, [&](std::string_view value, bool& go_on) {
    // Ingest records and financial operations (put_audit) share the family.
    if (value.empty() || static_cast<uint8_t>(value[0]) != codec::conflict_format) {
      return status::ok_status();
    }
    auto record = codec::decode_conflict(value);
    if (!record) return record.error();
    go_on = visit(*record);
    return status::ok_status();
  });
}

status ledger_store::scan_ingest_records(
    const std::string& customer_id, const std::function<bool(const ingest_record&)>& visit) const {
  return scan_audit(customer_id, [&](std::string_view value, bool& go_on) {
    if (value.empty() || static_cast<uint8_t>(value[0]) != codec::ingest_record_format) {
      return status::ok_status();
    }
    auto record = codec::decode_ingest_record(value);
    if (!record) return record.error();
    record->customer_id = customer_id;
    go_on = visit(*record);
    return status::ok_status();
  });
}

result<audit_chain_report> ledger_store::verify_audit_chain() const {
  auto verified = impl_->read_db([](database& db) {
    return audit_chain::verify(db.db(), db.handle(meta_family), db.handle(audit_family));
  });
  if (!verified.ok()) return verified.error();
  const auto& v = verified.value();
  return audit_chain_report{v.intact,         v.entries_verified,
                            v.chain.sequence, security::to_hex(v.chain.hash),
                            v.problem,        v.first_bad_sequence};
}

}  // namespace billing::storage
