// Retention of raw windows. Rollups, invoices and audit records are kept
// forever; raw windows (and their dedup entries) older than the retention
// period are dropped by a compaction filter, so retention costs no extra
// writes and no scan: RocksDB drops the keys while it rewrites files anyway.
//
// Dropping a dedup entry would let a re-sent old window count twice, so
// ingest rejects every window that starts before the same cutoff
// (validation_limits::raw_retention_ns): the two use one clock and one rule.
#pragma once

#include <rocksdb/compaction_filter.h>

#include <cstdint>
#include <functional>
#include <memory>

namespace billing::storage {

enum class retained_key_kind { window, dedup };

// Unix nanoseconds now; injectable for tests.
using unix_clock = std::function<int64_t()>;

// Drops keys whose window_start is before now - retention_ns at the time the
// compaction starts. retention_ns 0 keeps everything. Keys that do not parse
// are kept.
std::shared_ptr<rocksdb::CompactionFilterFactory> make_retention_filter_factory(
    retained_key_kind kind, int64_t retention_ns, unix_clock clock);

}  // namespace billing::storage
