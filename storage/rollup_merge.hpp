// The rollups family's merge operator. A customer actor adds a commit group's
// usage to its rollup buckets with Merge rather than read-modify-write, so
// rollups are written in the same WriteBatch as the raw windows without a
// read on the ingest path, and RocksDB combines the operands when it reads or
// compacts.
#pragma once

#include <rocksdb/merge_operator.h>

#include <memory>

namespace billing::storage {

// Operands and results are codec rollup values. Counters add, peak takes the
// maximum, the active span takes min/max. An operand that does not decode,
// or a sum that would overflow, fails the merge: RocksDB then reports
// corruption for that key rather than a wrong total.
std::shared_ptr<rocksdb::MergeOperator> make_rollup_merge_operator();

}  // namespace billing::storage
