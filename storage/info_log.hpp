// RocksDB's info log as billingd log lines. RocksDB's own LOG file lives in
// the data directory by default; on a full disk its logger fails an append,
// ignores the error, and the next line trips an assertion in Debian's
// librocksdb (WritableFileWriter::AssertFalseAndGetStatusForPrevError) that
// aborts the process. Lines go to billingd's structured log on stderr instead.
#pragma once

#include <rocksdb/env.h>

#include <memory>

#include "observability/log.hpp"

namespace billing::storage {

// Lines of `threshold` and above become billingd log lines (component
// "rocksdb"); RocksDB's header lines (its options at every open) count as info.
std::shared_ptr<rocksdb::Logger> make_info_log(observability::log_level threshold);

}  // namespace billing::storage
