// Price plans and the pricing of usage into invoice lines, exactly. A plan
// has effective-dated versions; each version prices the billed dimensions,
// optionally in graduated tiers over the period's cumulative quantity, with
// optional region multipliers, a monthly base fee and a minimum commitment.
// Every line is rounded once, half to even, to the nano-unit (model/money).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "model/money.hpp"
#include "model/status.hpp"

namespace billing::model {

enum class dimension : uint8_t {
  cpu,         // core-hours, from cpu_time_nanos
  memory,      // GiB-hours, from memory_bytes_seconds
  disk_read,   // GB (10^9 bytes)
  disk_write,  // GB
  network_rx,  // GB
  network_tx,  // GB
  vm_time,     // VM-hours, from exact active nanoseconds
};
inline constexpr size_t dimension_count = 7;

struct dimension_info {
  std::string_view name;  // as in config and invoices, e.g. "cpu"
  std::string_view unit;  // e.g. "core-hour"
  int128 base_units_per_unit;
};
const dimension_info& info(dimension which);

// A graduated tier: the price of the units of the period's cumulative quantity
// below `up_to_base_units` (base units: ns, byte-seconds, bytes), above the
// previous tier's bound. The last tier has no bound (0).
struct price_tier {
  int128 up_to_base_units = 0;
  rate price;
};

struct dimension_price {
  std::vector<price_tier> tiers;  // empty: the dimension is free
};

// A region multiplier in millionths: 1'100'000 is ×1.1.
inline constexpr int128 multiplier_scale = 1'000'000;

struct plan_version {
  int64_t effective_from_ns = 0;
  std::array<dimension_price, dimension_count> prices{};
  std::map<std::string, int128> region_multipliers;  // absent region: ×1
  money monthly_base_fee;
  money monthly_minimum;
};

// Checks tiers (ascending bounds, only the last unbounded), multipliers
// (positive) and amounts (non-negative); invalid_argument naming the problem.
status validate(const plan_version& version);

// Usage of one dimension in one region under one plan version, in time order
// within the period: what the ledger's rollups split at rate changes.
struct usage_slice {
  dimension which = dimension::cpu;
  std::string region;
  size_t version_index = 0;  // into the plan's versions
  int128 quantity = 0;       // base units
};

struct invoice_line {
  dimension which = dimension::cpu;
  std::string region;
  size_t version_index = 0;
  size_t tier_index = 0;
  int128 quantity = 0;  // base units
  rate price;           // per billing unit, before the multiplier
  int128 multiplier = multiplier_scale;
  money amount;
};

// Prices `slices` (in time order) under `versions`. A dimension's tiers apply
// to its cumulative quantity over the period across regions and versions: a
// slice that crosses a tier bound becomes two lines. out_of_range on overflow,
// invalid_argument on a bad version index.
result<std::vector<invoice_line>> price_usage(const std::vector<plan_version>& versions,
                                              const std::vector<usage_slice>& slices);

// `amount` × active_ns / period_ns, rounded once half to even: the prorated
// part of a monthly fee for a customer or VM active only part of the period.
result<money> prorate(const money& amount, int64_t active_ns, int64_t period_ns);

}  // namespace billing::model
