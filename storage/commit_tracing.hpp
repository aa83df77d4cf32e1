// The spans of a group commit (README "Traces"). One synced RocksDB write
// serves many requests at once (every write set pending on the committer
// thread, each of which may carry several requests a customer ledger
// grouped). A span has one parent, so each waiting request gets its own
// "commit_group" span, a child of its actor hop, covering the whole group
// write, with a "wal_fsync" child for the synced Write; the spans of one
// group share billing.commit_group.id (per process) and its sizes, so the
// copies in different traces can be joined.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "observability/span.hpp"
#include "storage/group_committer.hpp"

namespace billing::storage {

struct timed_interval {
  int64_t start_unix_ns = 0;
  int64_t end_unix_ns = 0;
  bool failed = false;
};

struct commit_group_timing {
  uint64_t group_id = 0;
  int64_t started_unix_ns = 0;         // the committer took the group
  int64_t ended_unix_ns = 0;           // every outcome known, before the callbacks
  std::optional<timed_interval> sync;  // the synced write, when one was made
};

// True when some write set of `group` carries a traced request.
bool has_traces(std::span<const pending_commit> group);

// Records the commit_group and wal_fsync spans of every traced request in
// `group`, with each write set's outcome.
void record_commit_spans(observability::tracer& sink, std::span<const pending_commit> group,
                         const commit_group_timing& timing);

}  // namespace billing::storage
