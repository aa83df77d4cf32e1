// The tamper-evident audit chain: every audit entry, in the order the store
// commits them, is linked to the one before by a SHA-256 hash. The links live
// in the meta family, written in the same WriteBatch as their entries, one
// link record per WriteBatch (a commit group) for all the entries it chains:
//
//   meta "audit_chain/" be64(first sequence)
//     -> 2 | prev_hash(32) | be32(count) | count x (hash(32) | be32(len key) | audit key)
//   meta "audit_chain_head"
//     -> version | be64(sequence) | be64(entries) | hash(32)
//   hash = SHA-256(prev_hash | be64(sequence) | be32(len key) | key | value)
//
// The entries of a link have consecutive sequences from its first one, and
// each entry's prev_hash is the hash of the entry before it. Stores written
// before 2026-12-05 hold format 1 links, one per entry
// (1 | prev_hash(32) | hash(32) | audit key), which verify just the same: the
// hashes are the same whichever way the links are grouped. The first entry's
// prev_hash is 32 zero bytes. Changing, removing or adding an audit entry, or
// removing entries from the end, breaks a hash, a link or the head, and
// verify_audit_chain() names the first entry where it breaks.
#pragma once

#include <rocksdb/db.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
inline constexpr uint8_t link_format = 2;
inline constexpr uint8_t single_entry_link_format = 1;
inline constexpr uint8_t head_format = 1;

struct head {
  uint64_t sequence = 0;  // of the last entry; 0 with no entries
  uint64_t entries = 0;
  digest hash{};  // of the last entry; zeros with no entries
};

struct linked_entry {
  digest hash{};
  std::string audit_key;
};

// The entries one link record chains, in sequence order from the sequence in
// its key.
struct link {
  digest prev_hash{};  // of the entry before the first one
  std::vector<linked_entry> entries;
};

digest entry_hash(const digest& prev_hash, uint64_t sequence, std::string_view key,
                  std::string_view value);

std::string link_key(uint64_t sequence);
// The first sequence a link key names; nullopt for a malformed key.
std::optional<uint64_t> link_sequence(std::string_view key);
std::string encode_link(const link& value);
// Either format (see above).
result<link> decode_link(std::string_view value);
std::string encode_head(const head& value);
result<head> decode_head(std::string_view value);

// The chain as a WriteBatch being built leaves it. Entries are put into the
// audit family as they are appended; their link and the new head are put by
// finish(), once, when the batch is complete: one link record per batch
// instead of one per entry (a batch spread over a thousand customers chains
// a thousand entries).
class batch_chain {
 public:
  batch_chain(const head& durable, uint64_t next_sequence);

  // The sequence the next appended entry gets (part of some audit keys).
  uint64_t next_sequence() const { return first_sequence_ + pending_.entries.size(); }
  // The head as the entries appended so far leave it.
  head chain() const;

  // Puts the entry `key` -> `value` into `audit` and chains it.
  rocksdb::Status append(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* audit,
                         const std::string& key, const std::string& value);

  // Entries appended so far, and dropping those after the first `count`
  // again: a write set that fails to be added (with the batch's own save
  // point) leaves no trace in the chain.
  size_t chained() const { return pending_.entries.size(); }
  void rollback_to(size_t count) { pending_.entries.resize(count); }

  // Puts the link of every entry appended and the new head into `meta`;
  // nothing when no entry was appended.
  rocksdb::Status finish(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* meta) const;

 private:
  head durable_;
  uint64_t first_sequence_;
  link pending_;  // prev_hash: the durable head's
};

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
