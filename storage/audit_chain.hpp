// The tamper-evident audit chain: every audit entry, in the order the store
// commits them, is linked to the one before by a SHA-256 hash. The links live
// in the meta family, written in the same WriteBatch as their entries:
//
//   meta "audit_chain/" be64(sequence) -> version | prev_hash(32) | hash(32) | audit key
//   meta "audit_chain_head"             -> version | be64(sequence) | be64(entries) | hash(32)
//   hash = SHA-256(prev_hash | be64(sequence) | be32(len key) | key | value)
//
// The first entry's prev_hash is 32 zero bytes. Changing, removing or adding
// an audit entry, or removing entries from the end, breaks a hash, a link or
// the head, and verify_audit_chain() names the first entry where it breaks.
#pragma once

#include <rocksdb/db.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "model/status.hpp"
#include "security/auth.hpp"

namespace billing::storage::audit_chain {

using security::digest;

inline constexpr std::string_view head_key = "audit_chain_head";
inline constexpr std::string_view link_prefix = "audit_chain/";
// A replica that installs a shard snapshot (cluster/replication) retracts
// its audit entries the snapshot does not hold (writes it stored as a
// deposed leader, never acknowledged): each moves, unchanged, from the audit
// family to meta "audit_retracted/" + key, where verification still finds
// it, so the chain keeps verifying and the audit family equals the leader's.
// "audit_unconfirmed/" + key marks an entry an install has not seen yet.
inline constexpr std::string_view retracted_prefix = "audit_retracted/";
inline constexpr std::string_view unconfirmed_prefix = "audit_unconfirmed/";
inline constexpr uint8_t link_format = 1;
inline constexpr uint8_t head_format = 1;

struct head {
  uint64_t sequence = 0;  // of the last entry; 0 with no entries
  uint64_t entries = 0;
  digest hash{};  // of the last entry; zeros with no entries
};

struct link {
  digest prev_hash{};
  digest hash{};
  std::string audit_key;
};

digest entry_hash(const digest& prev_hash, uint64_t sequence, std::string_view key,
                  std::string_view value);

std::string link_key(uint64_t sequence);
std::string encode_link(const link& value);
result<link> decode_link(std::string_view value);
std::string encode_head(const head& value);
result<head> decode_head(std::string_view value);

// Appends one audit entry and its link to `batch` and advances `chain`.
rocksdb::Status append(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* meta,
                       rocksdb::ColumnFamilyHandle* audit, head& chain, uint64_t sequence,
                       const std::string& key, const std::string& value);

// The stored head, or an empty head when no entry was ever chained.
result<head> load_head(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta);

struct verification {
  bool intact = false;
  uint64_t entries_verified = 0;
  head chain;                       // the stored head
  std::string problem;              // empty when intact
  uint64_t first_bad_sequence = 0;  // 0 when the problem is not one entry's
};

// Walks the whole chain in sequence order on one snapshot (commits may go
// on meanwhile) and checks every link, every entry's hash, the head, and that
// the audit family holds no entry outside the chain. I/O errors are a status;
// a broken chain is a verification with intact == false.
result<verification> verify(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                            rocksdb::ColumnFamilyHandle* audit);

}  // namespace billing::storage::audit_chain
