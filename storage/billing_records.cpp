#include "storage/billing_records.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "security/auth.hpp"
#include "storage/bytes.hpp"
#include "storage/keys.hpp"

namespace billing::storage {
namespace {

constexpr std::string_view invoice_counters_key = "invoice_counters";
constexpr size_t sha256_bytes = std::tuple_size_v<security::digest>;

status corrupt(std::string_view what, std::string_view why) {
  return {status_code::data_loss, fmt::format("corrupt {}: {}", what, why)};
}

result<std::string> key_with_time(std::string_view customer_id, int64_t ns) {
  auto key = keys::customer_prefix(customer_id);
  if (!key) return key.error();
  keys::append_timestamp(*key, ns);
  return key;
}

using security::sha256;
using security::to_hex;

// Every key of `customer_id` in `which`, decoded by `decode`, in key order.
template <class T, class Decode>
result<std::vector<T>> load_all(const ledger_store& store, uint32_t which,
                                std::string_view customer_id, Decode decode) {
  auto prefix = keys::customer_prefix(customer_id);
  if (!prefix) return prefix.error();
  std::vector<T> found;
  status failed;
  status scanned = store.scan_range(which, *prefix, keys::prefix_successor(*prefix),
                                    [&](std::string_view, std::string_view value) {
                                      auto decoded = decode(value);
                                      if (!decoded.ok()) {
                                        failed = decoded.error();
                                        return false;
                                      }
                                      found.push_back(std::move(decoded).value());
                                      return true;
                                    });
  if (!scanned.ok()) return scanned;
  if (!failed.ok()) return failed;
  return found;
}

}  // namespace

result<std::string> plan_key(std::string_view customer_id, int64_t effective_from_ns) {
  return key_with_time(customer_id, effective_from_ns);
}

result<std::string> invoice_key(std::string_view customer_id, int64_t period_start_ns) {
  return key_with_time(customer_id, period_start_ns);
}

// ---- plan versions ----

std::string encode_plan_version(const model::plan_version& version) {
  std::string out;
  bytes::append_u8(out, plan_version_format);
  bytes::append_i64(out, version.effective_from_ns);
  for (const auto& price : version.prices) {
    bytes::append_u32(out, static_cast<uint32_t>(price.tiers.size()));
    for (const auto& tier : price.tiers) {
      bytes::append_i128(out, tier.up_to_base_units);
      bytes::append_i128(out, tier.price.picos);
    }
  }
  bytes::append_u32(out, static_cast<uint32_t>(version.region_multipliers.size()));
  for (const auto& [region, multiplier] : version.region_multipliers) {
    bytes::append_string(out, region);
    bytes::append_i128(out, multiplier);
  }
  bytes::append_i128(out, version.monthly_base_fee.nanos);
  bytes::append_i128(out, version.monthly_minimum.nanos);
  return out;
}

result<model::plan_version> decode_plan_version(std::string_view value) {
  constexpr std::string_view what = "plan version";
  bytes::reader in(value);
  if (in.u8() != plan_version_format) return corrupt(what, "unknown format");
  model::plan_version version;
  auto from = in.i64();
  if (!from) return corrupt(what, "truncated");
  version.effective_from_ns = *from;
  for (auto& price : version.prices) {
    auto count = in.u32();
    if (!count || *count > in.remaining() / 32) return corrupt(what, "bad tier count");
    for (uint32_t t = 0; t < *count; ++t) {
      auto bound = in.i128();
      auto picos = in.i128();
      if (!bound || !picos) return corrupt(what, "truncated tier");
      price.tiers.push_back({*bound, model::rate{*picos}});
    }
  }
  auto regions = in.u32();
  if (!regions || *regions > in.remaining() / 20) return corrupt(what, "bad region count");
  for (uint32_t r = 0; r < *regions; ++r) {
    auto region = in.string();
    if (!region) return corrupt(what, "truncated region");
    auto multiplier = in.i128();
    if (!multiplier) return corrupt(what, "truncated multiplier");
    version.region_multipliers[*region] = *multiplier;
  }
  auto fee = in.i128();
  auto minimum = in.i128();
  if (!fee || !minimum || !in.at_end()) return corrupt(what, "bad fee fields");
  version.monthly_base_fee.nanos = *fee;
  version.monthly_minimum.nanos = *minimum;
  return version;
}

// ---- invoices ----

std::string encode_invoice_content(const model::invoice& bill) {
  std::string out;
  bytes::append_u8(out, invoice_format);
  bytes::append_string(out, bill.customer_id);
  bytes::append_i64(out, bill.period_start_ns);
  bytes::append_i64(out, bill.period_end_ns);
  bytes::append_i64(out, bill.active_from_ns);
  bytes::append_u32(out, static_cast<uint32_t>(bill.lines.size()));
  for (const auto& line : bill.lines) {
    bytes::append_u8(out, static_cast<uint8_t>(line.kind));
    bytes::append_u8(out, static_cast<uint8_t>(line.which));
    bytes::append_string(out, line.region);
    bytes::append_i64(out, line.version_effective_from_ns);
    bytes::append_u32(out, line.tier);
    bytes::append_i128(out, line.quantity);
    bytes::append_i128(out, line.price.picos);
    bytes::append_i128(out, line.multiplier);
    bytes::append_i128(out, line.amount.nanos);
    bytes::append_i64(out, line.adjusted_period_start_ns);
  }
  bytes::append_u32(out, static_cast<uint32_t>(bill.vms.size()));
  for (const auto& vm : bill.vms) {
    bytes::append_string(out, vm.vm_id);
    bytes::append_string(out, vm.region);
    bytes::append_u64(out, vm.active_nanos);
    bytes::append_i64(out, vm.first_active_ns);
    bytes::append_i64(out, vm.last_active_ns);
  }
  for (const auto* amount : {&bill.usage_subtotal, &bill.subtotal, &bill.adjustments, &bill.total})
    bytes::append_i128(out, amount->nanos);
  bytes::append_u8(out, bill.finalized ? 1 : 0);
  bytes::append_u64(out, bill.number);
  bytes::append_i64(out, bill.finalized_at_ns);
  return out;
}

void seal_invoice(model::invoice& bill) {
  bill.content_hash = to_hex(sha256(encode_invoice_content(bill)));
}

result<model::invoice> decode_invoice(std::string_view value) {
  constexpr std::string_view what = "invoice";
  if (value.size() < sha256_bytes + 1) return corrupt(what, "too short");
  const std::string_view content = value.substr(0, value.size() - sha256_bytes);
  const auto digest = sha256(content);
  if (value.substr(content.size()) !=
      std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size())) {
    return corrupt(what, "content hash mismatch");
  }
  bytes::reader in(content);
  if (in.u8() != invoice_format) return corrupt(what, "unknown format");
  model::invoice bill;
  auto customer = in.string();
  auto start = in.i64();
  auto end = in.i64();
  auto active = in.i64();
  auto lines = in.u32();
  if (!customer || !start || !end || !active || !lines) return corrupt(what, "truncated header");
  bill.customer_id = *customer;
  bill.period_start_ns = *start;
  bill.period_end_ns = *end;
  bill.active_from_ns = *active;
  for (uint32_t i = 0; i < *lines; ++i) {
    model::invoice_item line;
    auto kind = in.u8();
    auto which = in.u8();
    auto region = in.string();
    auto from = in.i64();
    auto tier = in.u32();
    auto quantity = in.i128();
    auto price = in.i128();
    auto multiplier = in.i128();
    auto amount = in.i128();
    auto adjusted = in.i64();
    if (!kind || !which || !region || !from || !tier || !quantity || !price || !multiplier ||
        !amount || !adjusted || *kind < 1 || *kind > 4 || *which >= model::dimension_count) {
      return corrupt(what, "bad line");
    }
    line.kind = static_cast<model::line_kind>(*kind);
    line.which = static_cast<model::dimension>(*which);
    line.region = *region;
    line.version_effective_from_ns = *from;
    line.tier = *tier;
    line.quantity = *quantity;
    line.price.picos = *price;
    line.multiplier = *multiplier;
    line.amount.nanos = *amount;
    line.adjusted_period_start_ns = *adjusted;
    bill.lines.push_back(std::move(line));
  }
  auto vms = in.u32();
  if (!vms) return corrupt(what, "truncated vms");
  for (uint32_t i = 0; i < *vms; ++i) {
    auto vm_id = in.string();
    auto region = in.string();
    auto active_nanos = in.u64();
    auto first = in.i64();
    auto last = in.i64();
    if (!vm_id || !region || !active_nanos || !first || !last) return corrupt(what, "bad vm");
    bill.vms.push_back({*vm_id, *region, *active_nanos, *first, *last});
  }
  for (auto* amount : {&bill.usage_subtotal, &bill.subtotal, &bill.adjustments, &bill.total}) {
    auto nanos = in.i128();
    if (!nanos) return corrupt(what, "truncated totals");
    amount->nanos = *nanos;
  }
  auto finalized = in.u8();
  auto number = in.u64();
  auto at = in.i64();
  if (!finalized || !number || !at || !in.at_end()) return corrupt(what, "bad trailer");
  bill.finalized = *finalized == 1;
  bill.number = *number;
  bill.finalized_at_ns = *at;
  bill.content_hash = to_hex(digest);
  return bill;
}

// ---- write_set ----

void write_set::put_plan_version(std::string_view customer_id, const model::plan_version& version) {
  if (!encode_status_.ok()) return;
  auto key = plan_key(customer_id, version.effective_from_ns);
  if (!key) {
    encode_status_ = key.error();
    return;
  }
  mutations_.push_back({plans_family, std::move(*key), encode_plan_version(version)});
}

void write_set::put_invoice(const model::invoice& finalized) {
  if (!encode_status_.ok()) return;
  auto key = invoice_key(finalized.customer_id, finalized.period_start_ns);
  if (!key) {
    encode_status_ = key.error();
    return;
  }
  std::string value = encode_invoice_content(finalized);
  const auto digest = sha256(value);
  value.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  mutations_.push_back({invoices_family, std::move(*key), std::move(value)});
}

void write_set::put_invoice_counters(uint64_t next_number, int64_t finalized_through_ns) {
  std::string value;
  bytes::append_u64(value, next_number);
  bytes::append_i64(value, finalized_through_ns);
  mutations_.push_back({meta_family, std::string(invoice_counters_key), std::move(value)});
}

void write_set::put_audit(std::string_view customer_id, std::string_view kind, std::string_view who,
                          std::string_view what) {
  // One instant for the key and the value.
  const int64_t recorded_at_ns = model::unix_now_ns();
  std::string value;
  bytes::append_u8(value, audit_entry_format);
  bytes::append_i64(value, recorded_at_ns);
  bytes::append_string(value, kind);
  bytes::append_string(value, who);
  bytes::append_string(value, what);
  // Through the same path as ingest records: hash-chained at commit.
  put_audit(customer_id, recorded_at_ns, std::move(value));
}

// ---- reads ----

result<std::vector<model::plan_version>> load_plan_versions(const ledger_store& store,
                                                            std::string_view customer_id) {
  return load_all<model::plan_version>(store, plans_family, customer_id, decode_plan_version);
}

result<std::vector<model::plan_version>> effective_plan(const ledger_store& store,
                                                        std::string_view customer_id) {
  auto own = load_plan_versions(store, customer_id);
  if (!own.ok()) return own.error();
  auto versions = load_plan_versions(store, "");
  if (!versions.ok()) return versions.error();
  if (!own.value().empty()) {
    const int64_t own_from = own.value().front().effective_from_ns;
    std::erase_if(versions.value(), [own_from](const model::plan_version& version) {
      return version.effective_from_ns >= own_from;
    });
    for (auto& version : own.value()) versions.value().push_back(std::move(version));
  }
  return versions;
}

result<std::optional<model::invoice>> load_invoice(const ledger_store& store,
                                                   std::string_view customer_id,
                                                   int64_t period_start_ns) {
  auto key = invoice_key(customer_id, period_start_ns);
  if (!key) return key.error();
  auto stored = store.get(invoices_family, *key);
  if (!stored.ok()) return stored.error();
  if (!stored.value()) return std::optional<model::invoice>{};
  auto bill = decode_invoice(*stored.value());
  if (!bill.ok()) return bill.error();
  return std::optional<model::invoice>{std::move(bill).value()};
}

result<std::vector<model::invoice>> list_invoices(const ledger_store& store,
                                                  std::string_view customer_id) {
  return load_all<model::invoice>(store, invoices_family, customer_id, decode_invoice);
}

result<invoice_counters> load_invoice_counters(const ledger_store& store) {
  auto stored = store.get(meta_family, invoice_counters_key);
  if (!stored.ok()) return stored.error();
  invoice_counters counters;
  if (!stored.value()) return counters;
  bytes::reader in(*stored.value());
  auto next = in.u64();
  auto through = in.i64();
  if (!next || !through || !in.at_end()) return corrupt("invoice counters", "bad size");
  counters.next_number = *next;
  counters.finalized_through_ns = *through;
  return counters;
}

result<std::vector<std::string>> customers_with_usage(const ledger_store& store, int64_t from_ns,
                                                      int64_t to_ns) {
  std::vector<std::string> customers;
  std::optional<std::string> lower = std::string{};
  while (lower) {
    std::optional<std::string> customer;
    status scanned = store.scan_range(rollups_family, *lower, std::nullopt,
                                      [&](std::string_view key, std::string_view) {
                                        const auto size = static_cast<uint8_t>(key.front());
                                        if (key.size() > size) customer = key.substr(1, size);
                                        return false;
                                      });
    if (!scanned.ok()) return scanned;
    if (!customer) break;
    bool used = false;
    scanned = store.scan_rollups(*customer, model::granularity::hour, from_ns, to_ns,
                                 [&](const model::rollup_id&, const model::rollup_value&) {
                                   used = true;
                                   return false;
                                 });
    if (!scanned.ok()) return scanned;
    if (used) customers.push_back(*customer);
    auto prefix = keys::customer_prefix(*customer);
    if (!prefix) return prefix.error();
    lower = keys::prefix_successor(*prefix);
  }
  return customers;
}

status scan_audit_entries(const ledger_store& store, std::string_view customer_id,
                          const std::function<bool(const audit_entry&)>& visit) {
  auto prefix = keys::customer_prefix(customer_id);
  if (!prefix) return prefix.error();
  status failed;
  status scanned = store.scan_range(audit_family, *prefix, keys::prefix_successor(*prefix),
                                    [&](std::string_view, std::string_view value) {
                                      bytes::reader in(value);
                                      if (in.u8() != audit_entry_format)
                                        return true;  // a conflict record
                                      audit_entry entry;
                                      auto at = in.i64();
                                      auto kind = in.string();
                                      auto who = in.string();
                                      auto what = in.string();
                                      if (!at || !kind || !who || !what || !in.at_end()) {
                                        failed = corrupt("audit entry", "bad fields");
                                        return false;
                                      }
                                      return visit({*at, *kind, *who, *what});
                                    });
  if (!scanned.ok()) return scanned;
  return failed;
}

}  // namespace billing::storage
