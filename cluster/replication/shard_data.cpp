#include "cluster/replication/shard_data.hpp"

#include <fmt/format.h>

#include "storage/audit_chain.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace billing::cluster::replication {
namespace {

std::string unconfirmed_key(std::string_view audit_key) {
  return std::string(storage::audit_chain::unconfirmed_prefix) + std::string(audit_key);
}

}  // namespace

std::optional<std::string> customer_of(uint32_t family, std::string_view key,
                                       std::string_view value) {
  if (family == storage::vm_index_family) {
    auto customer = storage::codec::decode_vm_index(value);
    if (!customer.ok() || customer.value().empty()) return std::nullopt;
    return customer.value();
  }
  if (key.empty()) return std::nullopt;
  const auto length = static_cast<uint8_t>(key.front());
  if (length == 0 || key.size() < size_t{1} + length) return std::nullopt;
  return std::string(key.substr(1, length));
}

bool shard_selector::contains(uint32_t family, std::string_view key, std::string_view value) const {
  auto customer = customer_of(family, key, value);
  return customer && shard_of(*customer, shard_count) == shard;
}

status shard_selector::usable() const {
  if (shard_count == 0 || shard_of == nullptr) {
    return {status_code::unavailable,
            fmt::format("shard {}: the cluster's shard count is not known here yet; retry", shard)};
  }
  if (shard >= shard_count) {
    return {status_code::invalid_argument,
            fmt::format("shard {} is not below the shard count {}", shard, shard_count)};
  }
  return status::ok_status();
}

status export_shard(
    const storage::ledger_store& store, const shard_selector& selector, size_t chunk_bytes,
    const std::function<status(const storage::log_position& at)>& begin,
    const std::function<status(std::vector<storage::stored_record>&, bool last)>& chunk) {
  if (status usable = selector.usable(); !usable.ok()) return usable;
  return store.with_snapshot([&](const storage::snapshot_view& at) -> status {
    auto position = store.shard_position(selector.shard, &at);
    if (!position.ok()) return position.error();
    if (status started = begin(position.value()); !started.ok()) return started;
    std::vector<storage::stored_record> records;
    size_t bytes = 0;
    status failed;
    for (const uint32_t family : storage::replicated_families()) {
      status scanned = store.scan_range(
          family, "", std::nullopt,
          [&](std::string_view key, std::string_view value) {
            if (!selector.contains(family, key, value)) return true;
            records.push_back({family, std::string(key), std::string(value)});
            bytes += key.size() + value.size();
            if (bytes >= chunk_bytes) {
              failed = chunk(records, false);
              records.clear();
              bytes = 0;
            }
            return failed.ok();
          },
          &at);
      if (!scanned.ok()) return scanned;
      if (!failed.ok()) return failed;
    }
    return chunk(records, true);
  });
}

status erase_shard(storage::ledger_store& store, const shard_selector& selector,
                   size_t per_commit) {
  if (status usable = selector.usable(); !usable.ok()) return usable;
  // The position goes first, and the installing marker with it: a replica
  // stopped part-way holds part of the shard at an empty position, so it
  // takes only a whole snapshot until finish_install (replaying the log from
  // its start onto what is left would link its audit entries a second time
  // and keep writes it stored as a deposed leader); and unsynced: what it
  // held (and may have acknowledged) is gone until the snapshot is in.
  storage::write_set forget;
  forget.reset_shard_log(selector.shard, {});
  forget.mark_unsynced(selector.shard);
  forget.mark_installing(selector.shard);
  if (status reset = store.commit_and_wait(std::move(forget)); !reset.ok()) return reset;
  for (const uint32_t family : storage::replicated_families()) {
    // Collected first, erased after: no iterator stays open across commits.
    std::vector<std::string> doomed;
    status scanned = store.scan_range(family, "", std::nullopt,
                                      [&](std::string_view key, std::string_view value) {
                                        if (selector.contains(family, key, value)) {
                                          doomed.emplace_back(key);
                                        }
                                        return true;
                                      });
    if (!scanned.ok()) return scanned;
    for (size_t from = 0; from < doomed.size(); from += per_commit) {
      storage::write_set writes;
      for (size_t i = from; i < std::min(doomed.size(), from + per_commit); ++i) {
        if (family == storage::audit_family) {
          // Links of this node's audit chain: kept until the snapshot shows
          // which the leader holds too (finish_install retracts the others).
          writes.put_record({storage::meta_family, unconfirmed_key(doomed[i]), {}});
        } else {
          writes.erase_record(family, std::move(doomed[i]));
        }
      }
      if (status erased = store.commit_and_wait(std::move(writes)); !erased.ok()) return erased;
    }
  }
  std::vector<std::string> log_keys;
  const std::string prefix = storage::replication_log::log_prefix(selector.shard);
  status scanned =
      store.scan_range(storage::replication_family, prefix, storage::keys::prefix_successor(prefix),
                       [&](std::string_view key, std::string_view) {
                         log_keys.emplace_back(key);
                         return true;
                       });
  if (!scanned.ok()) return scanned;
  storage::write_set reset;
  for (auto& key : log_keys) reset.erase_record(storage::replication_family, std::move(key));
  return store.commit_and_wait(std::move(reset));
}

status put_records(storage::ledger_store& store,
                   const std::vector<storage::stored_record>& records) {
  if (records.empty()) return status::ok_status();
  storage::write_set writes;
  for (const auto& record : records) {
    if (record.family >= storage::family_names.size()) {
      return {status_code::invalid_argument, "a snapshot record names no column family"};
    }
    if (record.family == storage::audit_family) {
      writes.erase_record(storage::meta_family, unconfirmed_key(record.key));
      writes.put_chained_audit(record.key, record.value);
    } else {
      writes.put_record(record);
    }
  }
  return store.commit_and_wait(std::move(writes));
}

status finish_install(storage::ledger_store& store, const shard_selector& selector,
                      const storage::log_position& at) {
  if (status usable = selector.usable(); !usable.ok()) return usable;
  // The audit entries here that the snapshot did not hold are retracted:
  // out of the audit family, still where verification finds them.
  const std::string prefix(storage::audit_chain::unconfirmed_prefix);
  std::vector<std::string> unconfirmed;
  status scanned =
      store.scan_range(storage::meta_family, prefix, storage::keys::prefix_successor(prefix),
                       [&](std::string_view key, std::string_view) {
                         unconfirmed.emplace_back(key.substr(prefix.size()));
                         return true;
                       });
  if (!scanned.ok()) return scanned;
  storage::write_set writes;
  for (auto& audit_key : unconfirmed) {
    auto value = store.get(storage::audit_family, audit_key);
    if (!value.ok()) return value.error();
    if (!selector.contains(storage::audit_family, audit_key, "")) continue;
    if (value.value()) {
      writes.put_record({storage::meta_family,
                         std::string(storage::audit_chain::retracted_prefix) + audit_key,
                         *value.value()});
      writes.erase_record(storage::audit_family, audit_key);
    }
    writes.erase_record(storage::meta_family, unconfirmed_key(audit_key));
  }
  const uint32_t shard = selector.shard;
  writes.reset_shard_log(shard, at);
  // The leader's snapshot holds everything it acknowledged: synced.
  writes.mark_synced(shard);
  writes.mark_installed(shard);
  return store.commit_and_wait(std::move(writes));
}

}  // namespace billing::cluster::replication
