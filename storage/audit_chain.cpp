#include "storage/audit_chain.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <rocksdb/write_batch.h>

#include <functional>
#include <memory>
#include <optional>

#include "storage/bytes.hpp"
#include "storage/database.hpp"

namespace billing::storage::audit_chain {
namespace {

bool same(const digest& a, const digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool read_digest(bytes::reader& in, digest& out) {
  auto raw = in.take(out.size());
  if (!raw) return false;
  std::copy(raw->begin(), raw->end(), out.begin());
  return true;
}

void append_digest(std::string& out, const digest& value) {
  out.append(reinterpret_cast<const char*>(value.data()), value.size());
}

status corrupt(std::string_view what, std::string_view why) {
  return {status_code::data_loss, fmt::format("corrupt {}: {}", what, why)};
}

// The customer an audit key belongs to (its length-prefixed first part).
std::string customer_of(std::string_view audit_key) {
  if (audit_key.empty()) return "?";
  const size_t length = static_cast<uint8_t>(audit_key[0]);
  if (audit_key.size() < 1 + length) return "?";
  return std::string{audit_key.substr(1, length)};
}

verification broken(verification report, uint64_t sequence, std::string problem) {
  report.intact = false;
  report.first_bad_sequence = sequence;
  report.problem = std::move(problem);
  return report;
}

}  // namespace

digest entry_hash(const digest& prev_hash, uint64_t sequence, std::string_view key,
                  std::string_view value) {
  std::string input;
  input.reserve(prev_hash.size() + 12 + key.size() + value.size());
  append_digest(input, prev_hash);
  bytes::append_u64(input, sequence);
  bytes::append_u32(input, static_cast<uint32_t>(key.size()));
  input.append(key);
  input.append(value);
  return security::sha256(input);
}

std::string link_key(uint64_t sequence) {
  std::string key{link_prefix};
  bytes::append_u64(key, sequence);
  return key;
}

std::optional<uint64_t> link_sequence(std::string_view key) {
  if (!key.starts_with(link_prefix)) return std::nullopt;
  bytes::reader in(key.substr(link_prefix.size()));
  auto sequence = in.u64();
  if (!sequence || !in.at_end()) return std::nullopt;
  return sequence;
}

std::string encode_link(const link& value) {
  std::string out;
  bytes::append_u8(out, link_format);
  append_digest(out, value.prev_hash);
  bytes::append_u32(out, static_cast<uint32_t>(value.entries.size()));
  for (const auto& entry : value.entries) {
    append_digest(out, entry.hash);
    bytes::append_u32(out, static_cast<uint32_t>(entry.audit_key.size()));
    out.append(entry.audit_key);
  }
  return out;
}

result<link> decode_link(std::string_view value) {
  bytes::reader in(value);
  auto format = in.u8();
  link decoded;
  if (!format || (*format != link_format && *format != single_entry_link_format)) {
    return corrupt("audit chain link", "unknown format");
  }
  if (!read_digest(in, decoded.prev_hash)) return corrupt("audit chain link", "truncated");
  if (*format == single_entry_link_format) {
    linked_entry entry;
    if (!read_digest(in, entry.hash) || in.at_end()) {
      return corrupt("audit chain link", "truncated");
    }
    entry.audit_key = std::string{*in.take(in.remaining())};
    decoded.entries.push_back(std::move(entry));
    return decoded;
  }
  auto count = in.u32();
  if (!count || *count == 0) return corrupt("audit chain link", "no entries");
  // Bounded by what the value holds, not by the count it claims.
  for (uint32_t i = 0; i < *count; ++i) {
    linked_entry entry;
    auto length = read_digest(in, entry.hash) ? in.u32() : std::nullopt;
    auto key = length ? in.take(*length) : std::nullopt;
    if (!key || key->empty()) return corrupt("audit chain link", "truncated");
    entry.audit_key = std::string{*key};
    decoded.entries.push_back(std::move(entry));
  }
  if (!in.at_end()) return corrupt("audit chain link", "trailing bytes");
  return decoded;
}

std::string encode_head(const head& value) {
  std::string out;
  bytes::append_u8(out, head_format);
  bytes::append_u64(out, value.sequence);
  bytes::append_u64(out, value.entries);
  append_digest(out, value.hash);
  return out;
}

result<head> decode_head(std::string_view value) {
  bytes::reader in(value);
  auto format = in.u8();
  if (!format || *format != head_format) return corrupt("audit chain head", "unknown format");
  head decoded;
  auto sequence = in.u64();
  auto entries = in.u64();
  if (!sequence || !entries || !read_digest(in, decoded.hash) || !in.at_end()) {
    return corrupt("audit chain head", "wrong size");
  }
  decoded.sequence = *sequence;
  decoded.entries = *entries;
  return decoded;
}

batch_chain::batch_chain(const head& durable, uint64_t next_sequence)
    : durable_(durable), first_sequence_(next_sequence) {
  pending_.prev_hash = durable.hash;
}

head batch_chain::chain() const {
  if (pending_.entries.empty()) return durable_;
  return {next_sequence() - 1, durable_.entries + pending_.entries.size(),
          pending_.entries.back().hash};
}

rocksdb::Status batch_chain::append(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* audit,
                                    const std::string& key, const std::string& value) {
  if (auto put = batch.Put(audit, key, value); !put.ok()) return put;
  const digest& prev = pending_.entries.empty() ? durable_.hash : pending_.entries.back().hash;
  pending_.entries.push_back({entry_hash(prev, next_sequence(), key, value), key});
  return rocksdb::Status::OK();
}

rocksdb::Status batch_chain::finish(rocksdb::WriteBatch& batch,
                                    rocksdb::ColumnFamilyHandle* meta) const {
  if (pending_.entries.empty()) return rocksdb::Status::OK();
  if (auto put = batch.Put(meta, link_key(first_sequence_), encode_link(pending_)); !put.ok()) {
    return put;
  }
  return batch.Put(meta, head_key, encode_head(chain()));
}

result<head> load_head(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta) {
  std::string stored;
  auto read = db.Get(rocksdb::ReadOptions{}, meta, head_key, &stored);
  if (read.IsNotFound()) return head{};
  if (!read.ok()) return from_rocksdb(read, "reading the audit chain head");
  return decode_head(stored);
}

result<verification> verify(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                            rocksdb::ColumnFamilyHandle* audit) {
  const rocksdb::Snapshot* snapshot = db.GetSnapshot();
  const std::unique_ptr<const rocksdb::Snapshot, std::function<void(const rocksdb::Snapshot*)>>
      release(snapshot, [&db](const rocksdb::Snapshot* s) { db.ReleaseSnapshot(s); });
  rocksdb::ReadOptions read_options;
  read_options.snapshot = snapshot;

  verification report;
  std::string stored_head;
  if (auto read = db.Get(read_options, meta, head_key, &stored_head); read.ok()) {
    auto decoded = decode_head(stored_head);
    if (!decoded.ok()) return broken(report, 0, decoded.error().message());
    report.chain = decoded.value();
  } else if (!read.IsNotFound()) {
    return from_rocksdb(read, "reading the audit chain head");
  }

  // '/' + 1 == '0': every link key sorts below this bound.
  const std::string upper = std::string{link_prefix.substr(0, link_prefix.size() - 1)} + "0";
  const rocksdb::Slice upper_bound(upper);
  rocksdb::ReadOptions scan_options = read_options;
  scan_options.iterate_upper_bound = &upper_bound;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(scan_options, meta));
  digest running{};
  uint64_t last_sequence = 0;
  uint64_t retracted = 0;  // linked entries found retracted (see audit_chain.hpp)
  std::string value;
  for (it->Seek(link_prefix); it->Valid(); it->Next()) {
    const auto sequence = link_sequence(it->key().ToStringView());
    if (!sequence) {
      return broken(report, 0, "an audit chain link has a malformed key");
    }
    auto decoded = decode_link(it->value().ToStringView());
    if (!decoded.ok()) return broken(report, *sequence, decoded.error().message());
    const auto& linked = decoded.value();
    if (!same(linked.prev_hash, running)) {
      return broken(report, *sequence,
                    fmt::format("audit entry {} (customer '{}'): its link does not follow the "
                                "entry before it (an entry before it was removed or a link was "
                                "changed)",
                                *sequence, customer_of(linked.entries.front().audit_key)));
    }
    uint64_t entry_sequence = *sequence;
    for (const auto& entry : linked.entries) {
      const auto where = [&] {
        return fmt::format("audit entry {} (customer '{}')", entry_sequence,
                           customer_of(entry.audit_key));
      };
      auto read = db.Get(read_options, audit, entry.audit_key, &value);
      if (read.IsNotFound()) {
        read = db.Get(read_options, meta, std::string(retracted_prefix) + entry.audit_key, &value);
        if (read.ok()) ++retracted;
      }
      if (read.IsNotFound())
        return broken(report, entry_sequence, where() + " is missing (removed)");
      if (!read.ok()) return from_rocksdb(read, "reading an audit entry");
      if (!same(entry_hash(running, entry_sequence, entry.audit_key, value), entry.hash)) {
        return broken(report, entry_sequence,
                      where() + ": its content does not match its hash (the entry was modified)");
      }
      running = entry.hash;
      last_sequence = entry_sequence++;
      ++report.entries_verified;
    }
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "scanning the audit chain");

  if (report.entries_verified != report.chain.entries || last_sequence != report.chain.sequence ||
      !same(running, report.chain.hash)) {
    return broken(report, last_sequence,
                  fmt::format("the chain ends at entry {} after {} entries, but its head records "
                              "entry {} after {} entries (entries were removed from the end, or "
                              "the head was changed)",
                              last_sequence, report.entries_verified, report.chain.sequence,
                              report.chain.entries));
  }
  uint64_t audit_entries = 0;
  std::unique_ptr<rocksdb::Iterator> all(db.NewIterator(read_options, audit));
  for (all->SeekToFirst(); all->Valid(); all->Next()) ++audit_entries;
  if (!all->status().ok()) return from_rocksdb(all->status(), "counting the audit entries");
  if (audit_entries + retracted != report.entries_verified) {
    return broken(report, 0,
                  fmt::format("the audit family holds {} entries but the chain links {} (entries "
                              "were added outside the chain)",
                              audit_entries, report.entries_verified));
  }
  report.intact = true;
  return report;
}

}  // namespace billing::storage::audit_chain
