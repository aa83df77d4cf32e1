#include "storage/audit_chain.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <rocksdb/write_batch.h>

#include <functional>
#include <memory>

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

std::string encode_link(const link& value) {
  std::string out;
  bytes::append_u8(out, link_format);
  append_digest(out, value.prev_hash);
  append_digest(out, value.hash);
  out.append(value.audit_key);
  return out;
}

result<link> decode_link(std::string_view value) {
  bytes::reader in(value);
  auto format = in.u8();
  if (!format || *format != link_format) return corrupt("audit chain link", "unknown format");
  link decoded;
  if (!read_digest(in, decoded.prev_hash) || !read_digest(in, decoded.hash) || in.at_end()) {
    return corrupt("audit chain link", "truncated");
  }
  decoded.audit_key = std::string{*in.take(in.remaining())};
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

rocksdb::Status append(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* meta,
                       rocksdb::ColumnFamilyHandle* audit, head& chain, uint64_t sequence,
                       const std::string& key, const std::string& value) {
  link next{chain.hash, entry_hash(chain.hash, sequence, key, value), key};
  if (auto put = batch.Put(audit, key, value); !put.ok()) return put;
  if (auto put = batch.Put(meta, link_key(sequence), encode_link(next)); !put.ok()) return put;
  chain = {sequence, chain.entries + 1, next.hash};
  return rocksdb::Status::OK();
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
    bytes::reader key_reader(it->key().ToStringView().substr(link_prefix.size()));
    const auto sequence = key_reader.u64();
    if (!sequence || !key_reader.at_end()) {
      return broken(report, 0, "an audit chain link has a malformed key");
    }
    auto decoded = decode_link(it->value().ToStringView());
    if (!decoded.ok()) return broken(report, *sequence, decoded.error().message());
    const auto& entry = decoded.value();
    const std::string where =
        fmt::format("audit entry {} (customer '{}')", *sequence, customer_of(entry.audit_key));
    if (!same(entry.prev_hash, running)) {
      return broken(report, *sequence,
                    where +
                        ": its link does not follow the entry before it (an entry before it "
                        "was removed or a link was changed)");
    }
    auto read = db.Get(read_options, audit, entry.audit_key, &value);
    if (read.IsNotFound()) {
      read = db.Get(read_options, meta, std::string(retracted_prefix) + entry.audit_key, &value);
      if (read.ok()) ++retracted;
    }
    if (read.IsNotFound()) return broken(report, *sequence, where + " is missing (removed)");
    if (!read.ok()) return from_rocksdb(read, "reading an audit entry");
    if (!same(entry_hash(running, *sequence, entry.audit_key, value), entry.hash)) {
      return broken(report, *sequence,
                    where + ": its content does not match its hash (the entry was modified)");
    }
    running = entry.hash;
    last_sequence = *sequence;
    ++report.entries_verified;
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
