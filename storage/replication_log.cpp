#include "storage/replication_log.hpp"

#include <fmt/format.h>

#include "storage/bytes.hpp"
#include "storage/keys.hpp"

namespace billing::storage {

const std::vector<uint32_t>& replicated_families() {
  static const std::vector<uint32_t> families = {
      windows_family,  dedup_family,    audit_family,    rollups_family,    plans_family,
      invoices_family, vm_state_family, vm_index_family, metald_gaps_family};
  return families;
}

namespace replication_log {
namespace {

constexpr std::string_view log_tag = "log/";
constexpr std::string_view state_tag = "state/";
constexpr uint8_t merge_flag = 1;
constexpr uint8_t erase_flag = 2;
constexpr uint8_t audit_flag = 4;

status corrupt(std::string_view what) {
  return {status_code::data_loss, fmt::format("replication log: {}", what)};
}

// `header` big-endian, then `body`.
template <class Unsigned>
std::string with_header(Unsigned header, std::string_view body) {
  std::string out;
  out.reserve(sizeof(Unsigned) + body.size());
  if constexpr (sizeof(Unsigned) == 8) {
    bytes::append_u64(out, header);
  } else {
    bytes::append_u32(out, header);
  }
  out.append(body);
  return out;
}

// tag | be32(shard)
std::string shard_marker_key(std::string_view tag, uint32_t shard) {
  std::string key(tag);
  bytes::append_u32(key, shard);
  return key;
}

std::optional<uint32_t> shard_of_marker(std::string_view tag, std::string_view key) {
  if (key.size() != tag.size() + 4 || !key.starts_with(tag)) return std::nullopt;
  bytes::reader in(key.substr(tag.size()));
  return in.u32();
}

}  // namespace

std::string log_prefix(uint32_t shard) {
  return shard_marker_key(log_tag, shard);
}

std::string log_key(uint32_t shard, uint64_t seq) {
  std::string key = log_prefix(shard);
  bytes::append_u64(key, seq);
  return key;
}

std::string state_key(uint32_t shard) {
  return shard_marker_key(state_tag, shard);
}

std::string unsynced_key(uint32_t shard) {
  return shard_marker_key(unsynced_tag, shard);
}

std::optional<uint32_t> unsynced_shard(std::string_view key) {
  return shard_of_marker(unsynced_tag, key);
}

std::string installing_key(uint32_t shard) {
  return shard_marker_key(installing_tag, shard);
}

std::optional<uint32_t> installing_shard(std::string_view key) {
  return shard_of_marker(installing_tag, key);
}

std::optional<uint64_t> log_sequence(std::string_view key, uint32_t shard) {
  const std::string prefix = log_prefix(shard);
  if (key.size() != prefix.size() + 8 || !key.starts_with(prefix)) return std::nullopt;
  bytes::reader in(key.substr(prefix.size()));
  return in.u64();
}

std::string encode_entry_value(uint64_t epoch, std::string_view mutations) {
  return with_header(epoch, mutations);
}

result<log_entry> decode_entry_value(uint64_t seq, std::string_view value) {
  bytes::reader in(value);
  auto epoch = in.u64();
  if (!epoch) return corrupt(fmt::format("entry {} is truncated", seq));
  return log_entry{*epoch, seq, std::string(value.substr(8))};
}

std::string encode_state(const log_position& position) {
  std::string value;
  bytes::append_u8(value, state_format);
  bytes::append_u64(value, position.epoch);
  bytes::append_u64(value, position.seq);
  return value;
}

result<log_position> decode_state(std::string_view value) {
  bytes::reader in(value);
  auto format = in.u8();
  auto epoch = in.u64();
  auto seq = in.u64();
  if (!format || *format != state_format || !epoch || !seq || !in.at_end()) {
    return corrupt("unreadable shard state");
  }
  return log_position{*epoch, *seq};
}

void append_mutation(std::string& mutations, uint32_t& count, const logged_mutation& mutation) {
  bytes::append_u32(mutations, mutation.family);
  bytes::append_u8(mutations, static_cast<uint8_t>((mutation.merge ? merge_flag : 0) |
                                                   (mutation.erase ? erase_flag : 0) |
                                                   (mutation.audit ? audit_flag : 0)));
  bytes::append_string(mutations, mutation.key);
  bytes::append_string(mutations, mutation.value);
  ++count;
}

std::string finish_mutations(uint32_t count, std::string body) {
  return with_header(count, body);
}

result<std::vector<logged_mutation>> decode_mutations(std::string_view mutations) {
  bytes::reader in(mutations);
  auto count = in.u32();
  if (!count) return corrupt("no mutation count");
  std::vector<logged_mutation> decoded;
  // Each mutation takes at least 13 bytes: no huge reserve from a bad count.
  decoded.reserve(std::min<size_t>(*count, in.remaining() / 13));
  for (uint32_t i = 0; i < *count; ++i) {
    auto family = in.u32();
    auto flags = in.u8();
    auto key = in.string();
    auto value = in.string();
    if (!family || !flags || !key || !value) {
      return corrupt(fmt::format("mutation {} of {} is truncated", i, *count));
    }
    if (*family >= family_names.size()) return corrupt(fmt::format("no column family {}", *family));
    decoded.push_back({*family, (*flags & merge_flag) != 0, (*flags & erase_flag) != 0,
                       (*flags & audit_flag) != 0, std::move(*key), std::move(*value)});
  }
  if (!in.at_end()) return corrupt("bytes after the last mutation");
  return decoded;
}

}  // namespace replication_log
}  // namespace billing::storage
