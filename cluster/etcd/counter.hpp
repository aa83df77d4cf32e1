// A cluster-wide counter in etcd, taken by compare-and-swap: reads the
// key's value and mod_revision, writes value + count only if nobody wrote it
// meanwhile, and tries again otherwise. Every taker gets a block no other
// taker gets, and later takers get larger blocks, on every node and across
// restarts (the value lives in etcd). Invoice numbers (issue 15) use it.
#pragma once

#include <cstdint>
#include <string>

#include "cluster/etcd/etcd_client.hpp"

namespace billing::cluster::etcd {

// Takes `count` (> 0) consecutive values of the counter at `key` (relative
// to the prefix; absent: it starts at `first`); answers the first of them.
// unavailable when etcd is unreachable or too contended; internal when the
// key holds something that is not a counter.
result<uint64_t> take_from_counter(etcd_client& etcd, const std::string& key, uint64_t count,
                                   uint64_t first = 1);

}  // namespace billing::cluster::etcd
