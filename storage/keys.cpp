#include "storage/keys.hpp"

#include <fmt/format.h>

#include "storage/bytes.hpp"

namespace billing::storage::keys {

namespace {

constexpr uint64_t sign_bit = uint64_t{1} << 63;

status corrupt_window_key(std::string_view what) {
  return {status_code::data_loss, fmt::format("corrupt windows key: {}", what)};
}

status corrupt_rollup_key(std::string_view what) {
  return {status_code::data_loss, fmt::format("corrupt rollups key: {}", what)};
}

std::optional<std::string_view> read_part(bytes::reader& in) {
  auto length = in.u8();
  if (!length) return std::nullopt;
  return in.take(*length);
}

std::optional<int64_t> read_timestamp(bytes::reader& in) {
  auto ordered = in.u64();
  if (!ordered) return std::nullopt;
  return timestamp_from_ordered(*ordered);
}

}  // namespace

void append_timestamp(std::string& out, int64_t ns) {
  bytes::append_u64(out, static_cast<uint64_t>(ns) ^ sign_bit);
}

int64_t timestamp_from_ordered(uint64_t ordered) {
  return static_cast<int64_t>(ordered ^ sign_bit);
}

status append_part(std::string& out, std::string_view field, std::string_view part) {
  if (part.size() > max_part_bytes) {
    return {status_code::invalid_argument,
            fmt::format("{} is {} bytes; storage keys hold at most {}", field, part.size(),
                        max_part_bytes)};
  }
  bytes::append_u8(out, static_cast<uint8_t>(part.size()));
  out.append(part);
  return status::ok_status();
}

result<std::string> customer_prefix(std::string_view customer_id) {
  std::string key;
  if (auto appended = append_part(key, "customer_id", customer_id); !appended.ok()) return appended;
  return key;
}

std::optional<std::string> prefix_successor(std::string_view prefix) {
  std::string successor(prefix);
  while (!successor.empty() && static_cast<uint8_t>(successor.back()) == 0xff) successor.pop_back();
  if (successor.empty()) return std::nullopt;
  successor.back() = static_cast<char>(static_cast<uint8_t>(successor.back()) + 1);
  return successor;
}

result<std::string> window_key(std::string_view customer_id, int64_t window_start_ns,
                               std::string_view region, std::string_view vm_id,
                               int64_t window_end_ns) {
  std::string key;
  key.reserve(3 + customer_id.size() + region.size() + vm_id.size() + 16);
  if (auto appended = append_part(key, "customer_id", customer_id); !appended.ok()) {
    return appended;
  }
  append_timestamp(key, window_start_ns);
  if (auto appended = append_part(key, "region", region); !appended.ok()) return appended;
  if (auto appended = append_part(key, "vm_id", vm_id); !appended.ok()) return appended;
  append_timestamp(key, window_end_ns);
  return key;
}

result<std::string> window_key(const model::window_identity& id) {
  return window_key(id.customer_id, id.window_start_ns, id.region, id.vm_id, id.window_end_ns);
}

result<std::string> window_key(const model::usage_window& window) {
  return window_key(window.customer_id, window.window_start_ns, window.region, window.vm_id,
                    window.window_end_ns);
}

result<std::string> window_scan_bound(std::string_view customer_id, int64_t ns) {
  auto key = customer_prefix(customer_id);
  if (!key) return key;
  append_timestamp(*key, ns);
  return key;
}

result<model::window_identity_view> parse_window_key(std::string_view key) {
  bytes::reader in(key);
  auto customer = read_part(in);
  if (!customer) return corrupt_window_key("customer_id truncated");
  auto start = read_timestamp(in);
  if (!start) return corrupt_window_key("window_start truncated");
  auto region = read_part(in);
  if (!region) return corrupt_window_key("region truncated");
  auto vm = read_part(in);
  if (!vm) return corrupt_window_key("vm_id truncated");
  auto end = read_timestamp(in);
  if (!end) return corrupt_window_key("window_end truncated");
  if (!in.at_end()) return corrupt_window_key(fmt::format("{} trailing bytes", in.remaining()));
  return model::window_identity_view{*customer, *region, *vm, *start, *end};
}

result<model::window_identity> decode_window_key(std::string_view key) {
  auto parsed = parse_window_key(key);
  if (!parsed) return parsed.error();
  return model::window_identity{std::string(parsed->customer_id), std::string(parsed->region),
                                std::string(parsed->vm_id), parsed->window_start_ns,
                                parsed->window_end_ns};
}

result<std::string> dedup_key(const model::window_identity& id) {
  auto key = customer_prefix(id.customer_id);
  if (!key) return key;
  if (auto appended = append_part(*key, "region", id.region); !appended.ok()) return appended;
  if (auto appended = append_part(*key, "vm_id", id.vm_id); !appended.ok()) return appended;
  append_timestamp(*key, id.window_start_ns);
  append_timestamp(*key, id.window_end_ns);
  return key;
}

result<std::string> audit_key_without_sequence(std::string_view customer_id,
                                               int64_t recorded_at_ns) {
  auto key = customer_prefix(customer_id);
  if (!key) return key;
  append_timestamp(*key, recorded_at_ns);
  return key;
}

void append_audit_sequence(std::string& key, uint64_t sequence) {
  bytes::append_u64(key, sequence);
}

result<std::string> rollup_scan_bound(std::string_view customer_id, model::granularity grain,
                                      int64_t ns) {
  auto key = customer_prefix(customer_id);
  if (!key) return key;
  bytes::append_u8(*key, static_cast<uint8_t>(grain));
  append_timestamp(*key, ns);
  return key;
}

result<std::string> rollup_key(std::string_view customer_id, const model::rollup_id& id) {
  auto key = rollup_scan_bound(customer_id, id.grain, id.bucket_start_ns);
  if (!key) return key;
  if (auto appended = append_part(*key, "region", id.region); !appended.ok()) return appended;
  if (auto appended = append_part(*key, "vm_id", id.vm_id); !appended.ok()) return appended;
  return key;
}

result<model::rollup_id> decode_rollup_key(std::string_view key) {
  bytes::reader in(key);
  if (!read_part(in)) return corrupt_rollup_key("customer_id truncated");
  auto grain = in.u8();
  if (!grain || *grain < static_cast<uint8_t>(model::granularity::hour) ||
      *grain > static_cast<uint8_t>(model::granularity::month)) {
    return corrupt_rollup_key("granularity missing or unknown");
  }
  auto start = read_timestamp(in);
  if (!start) return corrupt_rollup_key("bucket_start truncated");
  auto region = read_part(in);
  if (!region) return corrupt_rollup_key("region truncated");
  auto vm = read_part(in);
  if (!vm) return corrupt_rollup_key("vm_id truncated");
  if (!in.at_end()) return corrupt_rollup_key(fmt::format("{} trailing bytes", in.remaining()));
  return model::rollup_id{static_cast<model::granularity>(*grain), *start, std::string(*region),
                          std::string(*vm)};
}

std::optional<int64_t> window_start_of_window_key(std::string_view key) {
  auto id = parse_window_key(key);
  if (!id) return std::nullopt;
  return id->window_start_ns;
}

std::optional<int64_t> window_start_of_dedup_key(std::string_view key) {
  bytes::reader in(key);
  if (!read_part(in) || !read_part(in) || !read_part(in)) return std::nullopt;
  auto start = read_timestamp(in);
  auto end = read_timestamp(in);
  if (!start || !end || !in.at_end()) return std::nullopt;
  return *start;
}

result<std::string> vm_state_key(std::string_view customer_id, std::string_view vm_id) {
  auto key = customer_prefix(customer_id);
  if (!key) return key;
  if (auto appended = append_part(*key, "vm_id", vm_id); !appended.ok()) return appended;
  return key;
}

result<std::string> vm_index_key(std::string_view vm_id) {
  std::string key;
  if (auto appended = append_part(key, "vm_id", vm_id); !appended.ok()) return appended;
  return key;
}

result<std::string> metald_instance_key(std::string_view instance_id) {
  std::string key;
  if (auto appended = append_part(key, "instance_id", instance_id); !appended.ok()) return appended;
  return key;
}

result<std::string> metald_gap_key(std::string_view customer_id, std::string_view vm_id,
                                   const model::metald_gap& gap) {
  auto key = customer_prefix(customer_id);
  if (!key) return key;
  append_timestamp(*key, gap.start_ns);
  if (auto appended = append_part(*key, "vm_id", vm_id); !appended.ok()) return appended;
  append_timestamp(*key, gap.end_ns);
  return key;
}

result<std::pair<std::string, model::metald_gap>> decode_metald_gap_key(std::string_view key) {
  auto corrupt = [](std::string_view what) {
    return status{status_code::data_loss, fmt::format("corrupt metald_gaps key: {}", what)};
  };
  bytes::reader in(key);
  if (!read_part(in)) return corrupt("customer_id truncated");
  auto start = read_timestamp(in);
  auto vm = start ? read_part(in) : std::nullopt;
  auto end = vm ? read_timestamp(in) : std::nullopt;
  if (!end) return corrupt("truncated");
  if (!in.at_end()) return corrupt(fmt::format("{} trailing bytes", in.remaining()));
  return std::pair{std::string(*vm), model::metald_gap{*start, *end}};
}

}  // namespace billing::storage::keys

namespace billing::storage::keys {

result<std::string> handoff_prefix(std::string_view node_id) {
  std::string key;
  if (auto appended = append_part(key, "node_id", node_id); !appended.ok()) return appended;
  return key;
}

result<std::string> handoff_key(std::string_view node_id, uint64_t sequence) {
  auto key = handoff_prefix(node_id);
  if (!key) return key;
  bytes::append_u64(*key, sequence);
  return key;
}

std::optional<uint64_t> handoff_sequence(std::string_view key) {
  bytes::reader in(key);
  if (!read_part(in)) return std::nullopt;
  auto sequence = in.u64();
  if (!sequence || !in.at_end()) return std::nullopt;
  return sequence;
}

std::optional<std::string> handoff_node(std::string_view key) {
  bytes::reader in(key);
  auto node = read_part(in);
  if (!node || !handoff_sequence(key)) return std::nullopt;
  return std::string{*node};
}

}  // namespace billing::storage::keys
