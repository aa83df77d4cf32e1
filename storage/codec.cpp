#include "storage/codec.hpp"

#include <fmt/format.h>

#include <optional>
#include <tuple>

#include "storage/bytes.hpp"

namespace billing::storage::codec {

namespace {

constexpr size_t billed_value_count = 10;
static_assert(std::tuple_size_v<decltype(model::usage_window{}.billed_values())> ==
                  billed_value_count,
              "the billed values changed: update the codecs and their format versions");

// usage_window::billed_values() is const; decoding needs to write the same
// fields in the same order.
auto writable_billed_values(model::usage_window& w) {
  return std::tie(w.cpu_time_nanos, w.memory_bytes_used, w.memory_bytes_peak,
                  w.memory_bytes_seconds, w.disk_read_bytes, w.disk_write_bytes, w.disk_read_ops,
                  w.disk_write_ops, w.network_rx_bytes, w.network_tx_bytes);
}

status corrupt(std::string_view what, std::string_view why) {
  return {status_code::data_loss, fmt::format("corrupt {}: {}", what, why)};
}

status check_format(bytes::reader& in, std::string_view what, uint8_t expected) {
  auto format = in.u8();
  if (!format) return corrupt(what, "empty");
  if (*format != expected) {
    return corrupt(what, fmt::format("unknown format version {}", *format));
  }
  return status::ok_status();
}

// Appends every u64 of a tuple of fields, big-endian, in order.
template <class Tuple>
void append_u64_fields(std::string& out, const Tuple& fields) {
  std::apply([&](const auto&... field) { (bytes::append_u64(out, field), ...); }, fields);
}

// Reads a tuple of u64 references in order; false if the input ends first.
template <class Tuple>
bool read_u64_fields(bytes::reader& in, Tuple fields) {
  return std::apply(
      [&](auto&... field) {
        auto read_one = [&](uint64_t& target) {
          auto value = in.u64();
          if (value) target = *value;
          return value.has_value();
        };
        return (read_one(field) && ...);
      },
      fields);
}

void append_billed_values(std::string& out, const model::usage_window& window) {
  append_u64_fields(out, window.billed_values());
}

bool read_billed_values(bytes::reader& in, model::usage_window& window) {
  return read_u64_fields(in, writable_billed_values(window));
}

// The part of a window that is not its identity: shared by the windows value
// and the windows embedded in a conflict record.
void append_window_body(std::string& out, const model::usage_window& window) {
  bytes::append_i64(out, window.sampled_at_ns);
  bytes::append_f64(out, window.cpu_utilization_pct);
  bytes::append_f64(out, window.cpu_cores_used);
  append_billed_values(out, window);
}

bool read_window_body(bytes::reader& in, model::usage_window& window) {
  auto sampled_at = in.i64();
  auto utilization = in.f64();
  auto cores = in.f64();
  if (!sampled_at || !utilization || !cores) return false;
  window.sampled_at_ns = *sampled_at;
  window.cpu_utilization_pct = *utilization;
  window.cpu_cores_used = *cores;
  return read_billed_values(in, window);
}

model::usage_window window_with_identity(const model::window_identity& id) {
  model::usage_window window;
  window.customer_id = id.customer_id;
  window.region = id.region;
  window.vm_id = id.vm_id;
  window.window_start_ns = id.window_start_ns;
  window.window_end_ns = id.window_end_ns;
  return window;
}

// Strings inside values are not ordered, so they get a 4-byte length and no
// limit beyond that.
void append_string(std::string& out, std::string_view text) {
  bytes::append_u32(out, static_cast<uint32_t>(text.size()));
  out.append(text);
}

std::optional<std::string> read_string(bytes::reader& in) {
  auto length = in.u32();
  if (!length) return std::nullopt;
  auto text = in.take(*length);
  if (!text) return std::nullopt;
  return std::string(*text);
}

void append_full_window(std::string& out, const model::usage_window& window) {
  append_string(out, window.customer_id);
  append_string(out, window.region);
  append_string(out, window.vm_id);
  bytes::append_i64(out, window.window_start_ns);
  bytes::append_i64(out, window.window_end_ns);
  append_window_body(out, window);
}

bool read_full_window(bytes::reader& in, model::usage_window& window) {
  auto customer = read_string(in);
  if (!customer) return false;
  auto region = read_string(in);
  if (!region) return false;
  auto vm = read_string(in);
  if (!vm) return false;
  auto start = in.i64();
  auto end = in.i64();
  if (!start || !end) return false;
  window.customer_id = std::move(*customer);
  window.region = std::move(*region);
  window.vm_id = std::move(*vm);
  window.window_start_ns = *start;
  window.window_end_ns = *end;
  return read_window_body(in, window);
}

}  // namespace

std::string encode_window_value(const model::usage_window& window) {
  std::string out;
  out.reserve(1 + 8 * (3 + billed_value_count));
  bytes::append_u8(out, window_value_format);
  append_window_body(out, window);
  return out;
}

result<model::usage_window> decode_window_value(const model::window_identity& id,
                                                std::string_view value) {
  constexpr std::string_view what = "windows value";
  bytes::reader in(value);
  if (auto format = check_format(in, what, window_value_format); !format.ok()) return format;
  auto window = window_with_identity(id);
  if (!read_window_body(in, window)) return corrupt(what, "truncated");
  if (!in.at_end()) return corrupt(what, fmt::format("{} trailing bytes", in.remaining()));
  return window;
}

result<uint64_t> decode_window_memory_used(std::string_view value) {
  constexpr std::string_view what = "windows value";
  constexpr size_t body_bytes = 8 * (3 + billed_value_count);
  bytes::reader in(value);
  if (auto format = check_format(in, what, window_value_format); !format.ok()) return format;
  if (in.remaining() < body_bytes) return corrupt(what, "truncated");
  if (in.remaining() > body_bytes) {
    return corrupt(what, fmt::format("{} trailing bytes", in.remaining() - body_bytes));
  }
  // read_window_body's order: sampled_at, cpu_utilization_pct, cpu_cores_used,
  // then the billed values, of which memory_bytes_used is the second.
  (void)in.take(8 * 4);
  return *in.u64();
}

namespace {

// The batch a record is about: batch_id | instance_id | region | received_at.
void append_batch_meta(std::string& out, const model::batch_meta& meta) {
  append_string(out, meta.batch_id);
  append_string(out, meta.instance_id);
  append_string(out, meta.region);
  bytes::append_i64(out, meta.received_at_ns);
}

// Reads what append_batch_meta wrote; data_loss naming the field otherwise.
status read_batch_meta(bytes::reader& in, std::string_view what, model::batch_meta& meta) {
  auto batch_id = read_string(in);
  if (!batch_id) return corrupt(what, "batch_id truncated");
  auto instance_id = read_string(in);
  if (!instance_id) return corrupt(what, "instance_id truncated");
  auto region = read_string(in);
  if (!region) return corrupt(what, "region truncated");
  auto received_at = in.i64();
  if (!received_at) return corrupt(what, "received_at truncated");
  meta.batch_id = std::move(*batch_id);
  meta.instance_id = std::move(*instance_id);
  meta.region = std::move(*region);
  meta.received_at_ns = *received_at;
  return status::ok_status();
}

}  // namespace

std::string encode_conflict(const conflict_record& record) {
  std::string out;
  bytes::append_u8(out, conflict_format);
  append_batch_meta(out, record.meta);
  append_full_window(out, record.attempted);
  append_full_window(out, record.stored);
  return out;
}

result<conflict_record> decode_conflict(std::string_view value) {
  constexpr std::string_view what = "conflict record";
  bytes::reader in(value);
  if (auto format = check_format(in, what, conflict_format); !format.ok()) return format;
  conflict_record record;
  if (status meta = read_batch_meta(in, what, record.meta); !meta.ok()) return meta;
  if (!read_full_window(in, record.attempted)) return corrupt(what, "attempted window truncated");
  if (!read_full_window(in, record.stored)) return corrupt(what, "stored window truncated");
  if (!in.at_end()) return corrupt(what, fmt::format("{} trailing bytes", in.remaining()));
  return record;
}

std::string encode_ingest_record(const ingest_record& record) {
  std::string out;
  bytes::append_u8(out, ingest_record_format);
  append_batch_meta(out, record.meta);
  append_string(out, record.meta.caller);
  bytes::append_u32(out, record.accepted);
  bytes::append_u32(out, record.duplicate);
  bytes::append_u32(out, record.rejected);
  return out;
}

result<ingest_record> decode_ingest_record(std::string_view value) {
  constexpr std::string_view what = "ingest record";
  bytes::reader in(value);
  if (auto format = check_format(in, what, ingest_record_format); !format.ok()) return format;
  ingest_record record;
  if (status meta = read_batch_meta(in, what, record.meta); !meta.ok()) return meta;
  auto caller = read_string(in);
  if (!caller) return corrupt(what, "caller truncated");
  record.meta.caller = std::move(*caller);
  auto accepted = in.u32();
  auto duplicate = in.u32();
  auto rejected = in.u32();
  if (!accepted || !duplicate || !rejected) return corrupt(what, "counts truncated");
  if (!in.at_end()) return corrupt(what, fmt::format("{} trailing bytes", in.remaining()));
  record.accepted = *accepted;
  record.duplicate = *duplicate;
  record.rejected = *rejected;
  return record;
}

namespace {

// usage_totals in the order rollup value formats 1 and 2 store them, as
// uint64 (what those formats could hold).
bool read_u64_rollup_totals(bytes::reader& in, model::usage_totals& t) {
  uint64_t sums[10] = {};
  uint64_t peak = 0;
  const bool complete = read_u64_fields(
      in, std::tie(sums[0], sums[1], peak, sums[2], sums[3], sums[4], sums[5], sums[6], sums[7],
                   sums[8], sums[9]));
  size_t i = 0;
  for (auto field : model::kUsageSumFields) t.*field = sums[i++];
  t.memory_bytes_peak = peak;
  return complete;
}

// Format 3: the sums as 128-bit varints in kUsageSumFields order, then the peak.
bool read_exact_rollup_totals(bytes::reader& in, model::usage_totals& t) {
  for (auto field : model::kUsageSumFields) {
    auto sum = in.varint_u128();
    if (!sum) return false;
    t.*field = *sum;
  }
  auto peak = in.u64();
  if (!peak) return false;
  t.memory_bytes_peak = *peak;
  return true;
}

}  // namespace

std::string encode_rollup_value(const model::rollup_value& value) {
  std::string out;
  out.reserve(1 + 14 * 8);
  bytes::append_u8(out, rollup_value_format);
  for (auto field : model::kUsageSumFields) bytes::append_varint_u128(out, value.totals.*field);
  bytes::append_u64(out, value.totals.memory_bytes_peak);
  bytes::append_i64(out, value.first_active_ns);
  bytes::append_i64(out, value.last_active_ns);
  bytes::append_i64(out, value.longest_window_ns);
  return out;
}

result<model::rollup_value> decode_rollup_value(std::string_view value) {
  bytes::reader in(value);
  auto format = in.u8();
  if (!format) return corrupt("rollups value", "empty");
  if (*format < 1 || *format > rollup_value_format) {
    return corrupt("rollups value", fmt::format("unknown format version {}", *format));
  }
  model::rollup_value decoded;
  const bool complete = *format >= 3 ? read_exact_rollup_totals(in, decoded.totals)
                                     : read_u64_rollup_totals(in, decoded.totals);
  auto first = in.i64();
  auto last = in.i64();
  auto longest =
      *format == 1 ? std::optional<int64_t>{model::rollup_value::unknown_length} : in.i64();
  if (!complete || !first || !last || !longest) return corrupt("rollups value", "truncated");
  decoded.longest_window_ns = *longest;
  if (!in.at_end())
    return corrupt("rollups value", fmt::format("{} trailing bytes", in.remaining()));
  decoded.first_active_ns = *first;
  decoded.last_active_ns = *last;
  return decoded;
}

std::string encode_schema_version(uint32_t version) {
  std::string out;
  bytes::append_u32(out, version);
  return out;
}

result<uint32_t> decode_schema_version(std::string_view value) {
  bytes::reader in(value);
  auto version = in.u32();
  if (!version || !in.at_end()) {
    return corrupt("schema version", fmt::format("expected 4 bytes, found {}", value.size()));
  }
  return *version;
}

namespace {

auto sample_counters(model::metald_sample& s) {
  return std::tie(s.cpu_time_nanos, s.memory_usage_bytes, s.disk_read_bytes, s.disk_write_bytes,
                  s.network_rx_bytes, s.network_tx_bytes);
}

constexpr uint8_t gauge_known_flag = 1;
constexpr uint8_t end_by_timeout_flag = 2;
constexpr uint8_t stop_pending_flag = 4;

status check_end(const bytes::reader& in, std::string_view what) {
  if (in.at_end()) return status::ok_status();
  return corrupt(what, fmt::format("{} trailing bytes", in.remaining()));
}

}  // namespace

std::string encode_vm_state(const model::vm_state& state) {
  std::string out;
  bytes::append_u8(out, vm_state_format);
  append_string(out, state.region);
  bytes::append_i64(out, state.watermark_ns);
  auto last = state.last;
  append_u64_fields(out, sample_counters(last));
  bytes::append_u8(out,
                   static_cast<uint8_t>((state.gauge_known ? gauge_known_flag : 0) |
                                        (state.session_end_by_timeout ? end_by_timeout_flag : 0) |
                                        (state.stop_pending ? stop_pending_flag : 0)));
  bytes::append_u64(out, state.memory_remainder);
  bytes::append_i64(out, state.session_start_ns);
  bytes::append_i64(out, state.session_end_ns);
  bytes::append_i64(out, state.cadence_ns);
  bytes::append_i64(out, state.last_sample_ns);
  return out;
}

result<model::vm_state> decode_vm_state(std::string_view value) {
  bytes::reader in(value);
  // Format 1 (before the learned cadence) is format 2 without its last field.
  const bool with_cadence = !value.empty() && static_cast<uint8_t>(value[0]) == vm_state_format;
  if (auto checked = check_format(in, "vm_state value",
                                  with_cadence ? vm_state_format : vm_state_format_without_cadence);
      !checked.ok()) {
    return checked;
  }
  model::vm_state state;
  auto region = read_string(in);
  auto watermark = in.i64();
  const bool counters = region && watermark && read_u64_fields(in, sample_counters(state.last));
  auto flags = in.u8();
  auto remainder = in.u64();
  auto start = in.i64();
  auto end = in.i64();
  if (!counters || !flags || !remainder || !start || !end) {
    return corrupt("vm_state value", "truncated");
  }
  if (with_cadence) {
    auto cadence = in.i64();
    auto last_sample = in.i64();
    if (!cadence || !last_sample) return corrupt("vm_state value", "truncated");
    state.cadence_ns = *cadence;
    state.last_sample_ns = *last_sample;
  }
  if (auto checked = check_end(in, "vm_state value"); !checked.ok()) return checked;
  state.region = std::move(*region);
  state.watermark_ns = *watermark;
  state.last.timestamp_ns = *watermark;
  state.gauge_known = (*flags & gauge_known_flag) != 0;
  state.session_end_by_timeout = (*flags & end_by_timeout_flag) != 0;
  state.stop_pending = (*flags & stop_pending_flag) != 0;
  state.memory_remainder = *remainder;
  state.session_start_ns = *start;
  state.session_end_ns = *end;
  return state;
}

namespace {

// version | one string: the values of vm_index and metald_gaps.
std::string encode_versioned_string(uint8_t format, std::string_view text) {
  std::string out;
  bytes::append_u8(out, format);
  append_string(out, text);
  return out;
}

result<std::string> decode_versioned_string(std::string_view value, std::string_view what,
                                            uint8_t format) {
  bytes::reader in(value);
  if (auto checked = check_format(in, what, format); !checked.ok()) return checked;
  auto text = read_string(in);
  if (!text) return corrupt(what, "truncated");
  if (auto checked = check_end(in, what); !checked.ok()) return checked;
  return std::move(*text);
}

}  // namespace

std::string encode_vm_index(std::string_view customer_id) {
  return encode_versioned_string(vm_index_format, customer_id);
}

result<std::string> decode_vm_index(std::string_view value) {
  return decode_versioned_string(value, "vm_index value", vm_index_format);
}

std::string encode_metald_gap(std::string_view region) {
  return encode_versioned_string(metald_gap_format, region);
}

result<std::string> decode_metald_gap(std::string_view value) {
  return decode_versioned_string(value, "metald_gaps value", metald_gap_format);
}

std::string encode_metald_instance(const model::metald_instance& instance) {
  std::string out;
  bytes::append_u8(out, metald_instance_format);
  bytes::append_i64(out, instance.last_heartbeat_ns);
  bytes::append_u8(out, instance.timed_out ? 1 : 0);
  bytes::append_u32(out, static_cast<uint32_t>(instance.active_vms.size()));
  for (const auto& vm : instance.active_vms) append_string(out, vm);
  return out;
}

result<model::metald_instance> decode_metald_instance(std::string_view value) {
  bytes::reader in(value);
  if (auto checked = check_format(in, "metald_instances value", metald_instance_format);
      !checked.ok()) {
    return checked;
  }
  model::metald_instance instance;
  auto heartbeat = in.i64();
  auto timed_out = in.u8();
  auto count = in.u32();
  if (!heartbeat || !timed_out || !count) return corrupt("metald_instances value", "truncated");
  // Each vm costs at least its 4-byte length: a count beyond that is damage.
  if (*count > in.remaining() / 4) return corrupt("metald_instances value", "bad vm count");
  for (uint32_t i = 0; i < *count; ++i) {
    auto vm = read_string(in);
    if (!vm) return corrupt("metald_instances value", "truncated vm id");
    instance.active_vms.push_back(std::move(*vm));
  }
  if (auto checked = check_end(in, "metald_instances value"); !checked.ok()) return checked;
  instance.last_heartbeat_ns = *heartbeat;
  instance.timed_out = *timed_out != 0;
  return instance;
}

}  // namespace billing::storage::codec

namespace billing::storage {

result<model::usage_window> stored_window::decode() const {
  return codec::decode_window_value(
      {std::string(identity.customer_id), std::string(identity.region), std::string(identity.vm_id),
       identity.window_start_ns, identity.window_end_ns},
      value_);
}

result<uint64_t> stored_window::memory_bytes_used() const {
  return codec::decode_window_memory_used(value_);
}

}  // namespace billing::storage
