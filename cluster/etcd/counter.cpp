#include "cluster/etcd/counter.hpp"

#include <fmt/format.h>

#include <charconv>

namespace billing::cluster::etcd {

result<uint64_t> take_from_counter(etcd_client& etcd, const std::string& key, uint64_t count,
                                   uint64_t first) {
  if (count == 0) return status{status_code::invalid_argument, "take at least one value"};
  // Each failed attempt means another taker succeeded: progress is global.
  constexpr int kAttempts = 64;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto current = etcd.get(key);
    if (!current.ok()) return current.error();
    uint64_t next = first;
    int64_t revision = 0;
    if (!current.value().kvs.empty()) {
      const auto& kv = current.value().kvs.front();
      const auto parsed = std::from_chars(kv.value.data(), kv.value.data() + kv.value.size(), next);
      if (parsed.ec != std::errc{} || parsed.ptr != kv.value.data() + kv.value.size()) {
        return status{status_code::internal,
                      fmt::format("etcd key {} holds '{}', not a counter", key, kv.value)};
      }
      revision = kv.mod_revision;
    }
    auto swapped = etcd.put_all_if({{key, std::to_string(next + count), revision}});
    if (!swapped.ok()) return swapped.error();
    if (swapped.value()) return next;
  }
  return status{status_code::unavailable,
                fmt::format("etcd counter {} is too contended; retry", key)};
}

}  // namespace billing::cluster::etcd
