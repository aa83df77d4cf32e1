// The per-shard replication log (issue 16). A shard's leader logs every
// write_set of the shard's customers as the next entry of the shard's log,
// in the same WriteBatch as the write itself; followers apply the leader's
// entries in order, verbatim, and log them too. Layout (replication family):
//
//   "log/"   be32(shard) be64(seq) -> be64(epoch) | mutations
//   "state/" be32(shard)           -> format | be64(last epoch) | be64(last seq)
//   "unsynced/" be32(shard)        -> "" (this replica lost what it held of
//                                     the shard and has not caught up since)
//   "unsynced-pending"             -> "" (started on an empty store; the
//                                     placement not read yet)
//   "installing/" be32(shard)      -> "" (a snapshot install erased the shard
//                                     here and has not finished: the shard's
//                                     records are partial and its position is
//                                     reset, so only a whole snapshot, never
//                                     the log from its start, may refill it)
//   mutations: count(u32), then per mutation: family(u32) flags(u8) key value
//              (u32 length + bytes each)
//
// An entry's mutations are the write_set as the leader committed it: audit
// keys carry the leader's sequence, so the entries are byte-identical on every
// replica; each node chains them into its own audit chain (meta family) in its
// own commit order.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/status.hpp"

namespace billing::storage {

// Where a shard's log ends: the epoch and sequence of its last entry (0, 0:
// empty). Ordered as Raft orders logs: the later epoch first, then the
// longer log.
struct log_position {
  uint64_t epoch = 0;
  uint64_t seq = 0;
  friend auto operator<=>(const log_position&, const log_position&) = default;
};

// One entry of a shard's log: the leader's epoch when it was written, its
// sequence in the shard (1, 2, ... without gaps) and the encoded mutations.
struct log_entry {
  uint64_t epoch = 0;
  uint64_t seq = 0;
  std::string mutations;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_entry& x) {
  return f(x.epoch, x.seq, x.mutations);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_position& x) {
  return f(x.epoch, x.seq);
}

// The families a shard's replicas hold identically (every family with
// customer data); meta (audit chain links, schema), metald_instances (a
// node's own heartbeats), handoff and replication itself are node-local.
const std::vector<uint32_t>& replicated_families();

// A committed write_set that waits for its shard's majority: `on_done` runs
// once the shard's log is durable on a majority up to `seq`.
struct majority_wait {
  uint32_t shard = 0;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  std::function<void(status)> on_done;
};

struct logged_entry {
  uint32_t shard = 0;
  log_entry entry;
};

// The replication layer as the store sees it (cluster/replication). Both
// calls run on the committer thread and must not block.
class replication_sink {
 public:
  virtual ~replication_sink() = default;
  // Whether this node may write shard `shard`'s log as its leader at `epoch`.
  virtual bool leads(uint32_t shard, uint64_t epoch) const = 0;
  // After a durable write: the entries it logged as leader, in order, and
  // the completions of the leader's write_sets, which wait for a majority.
  virtual void committed(std::vector<logged_entry> entries, std::vector<majority_wait> waits) = 0;
};

namespace replication_log {

inline constexpr uint8_t state_format = 1;

std::string log_key(uint32_t shard, uint64_t seq);
std::string log_prefix(uint32_t shard);
std::string state_key(uint32_t shard);
std::string unsynced_key(uint32_t shard);
// The shard of an unsynced key; nullopt for another key.
std::optional<uint32_t> unsynced_shard(std::string_view key);
inline constexpr std::string_view unsynced_tag = "unsynced/";
// Set when a node starts on an empty store, cleared once the shards the
// placement listed it in are marked unsynced: a crash in between still
// leaves the node knowing that it lost them.
inline constexpr std::string_view unsynced_pending_key = "unsynced-pending";
std::string installing_key(uint32_t shard);
// The shard of an installing key; nullopt for another key.
std::optional<uint32_t> installing_shard(std::string_view key);
inline constexpr std::string_view installing_tag = "installing/";
// The sequence of a log key of `shard`; nullopt for another key.
std::optional<uint64_t> log_sequence(std::string_view key, uint32_t shard);

std::string encode_entry_value(uint64_t epoch, std::string_view mutations);
result<log_entry> decode_entry_value(uint64_t seq, std::string_view value);
std::string encode_state(const log_position& position);
result<log_position> decode_state(std::string_view value);

// One mutation of an entry (a write_set::mutation with its final key).
struct logged_mutation {
  uint32_t family = 0;
  bool merge = false;
  bool erase = false;
  bool audit = false;  // an audit entry: chained into the local audit chain
  std::string key;
  std::string value;
};
void append_mutation(std::string& mutations, uint32_t& count, const logged_mutation& mutation);
// The encoded list: count first, then what append_mutation appended.
std::string finish_mutations(uint32_t count, std::string body);
result<std::vector<logged_mutation>> decode_mutations(std::string_view mutations);

}  // namespace replication_log
}  // namespace billing::storage
