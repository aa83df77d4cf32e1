// A customer's invoice for one monthly UTC period, computed exactly from the
// hourly rollups (and, for an hour in which a plan version takes effect, from
// that hour's raw windows), under the customer's effective-dated plan
// versions (model/pricing). Pure: storage feeds the builder, actors run it.
//
// Rules (README "Billing model"):
// - The version in force at instant t is the last one with effective_from <= t;
//   usage before the first version is priced by the first version.
// - An hour in which a version takes effect (not on the hour) is split at that
//   instant: each part but the last is the sum of model::usage_within over the
//   hour's raw windows, the last is the hour's rollup minus those parts, so the
//   invoice always sums to the rollups exactly.
// - Usage lines: per (version, dimension, region), versions in time order,
//   regions by name; tiers apply to a dimension's cumulative quantity over the
//   period. One half-even rounding per line (model/pricing).
// - The customer is active from its first active instant in the period to the
//   period's end. Each version's monthly base fee and minimum are prorated by
//   the exact nanoseconds of that active time in which the version is in
//   force, over the period's nanoseconds (one rounding per version). The
//   minimum line tops the usage lines up to the prorated minimum (the base
//   fee does not count towards it). No usage in the period: no fee, no
//   minimum.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "model/money.hpp"
#include "model/pricing.hpp"
#include "model/rollup.hpp"
#include "model/status.hpp"
#include "model/usage_window.hpp"

namespace billing::model {

enum class line_kind : uint8_t {
  usage = 1,       // a dimension's usage in one region under one version and tier
  base_fee = 2,    // a version's prorated monthly base fee
  minimum = 3,     // top-up to the prorated minimum commitment
  adjustment = 4,  // late data for an already finalized period
};

struct invoice_item {
  line_kind kind = line_kind::usage;
  dimension which = dimension::cpu;       // usage lines
  std::string region;                     // usage lines
  int64_t version_effective_from_ns = 0;  // usage and base-fee lines
  uint32_t tier = 0;                      // usage lines, 0-based
  // usage: base units (ns, byte-seconds, bytes); base fee: active ns.
  int128 quantity = 0;
  rate price;                            // usage lines, per billing unit
  int128 multiplier = multiplier_scale;  // usage lines (millionths)
  money amount;
  int64_t adjusted_period_start_ns = 0;  // adjustment lines
  friend bool operator==(const invoice_item&, const invoice_item&) = default;
};

struct vm_hours {
  std::string vm_id;
  std::string region;
  uint64_t active_nanos = 0;
  int64_t first_active_ns = 0;
  int64_t last_active_ns = 0;  // end of the last active instant
  friend bool operator==(const vm_hours&, const vm_hours&) = default;
};

struct invoice {
  std::string customer_id;
  int64_t period_start_ns = 0;
  int64_t period_end_ns = 0;
  // First active instant in the period (period_end_ns when there was no usage).
  int64_t active_from_ns = 0;
  std::vector<invoice_item> lines;
  std::vector<vm_hours> vms;  // by (vm_id, region)
  money usage_subtotal;       // usage lines
  money subtotal;             // usage + base fees + minimum: what the period costs
  money adjustments;          // adjustment lines (earlier periods)
  money total;                // subtotal + adjustments
  // Set when finalized (storage/invoice_store): never recomputed afterwards.
  bool finalized = false;
  uint64_t number = 0;
  int64_t finalized_at_ns = 0;
  std::string content_hash;  // SHA-256 hex of the canonical encoding
  friend bool operator==(const invoice&, const invoice&) = default;
};

// Base units of usage by (plan version index, dimension index, region).
using usage_quantities = std::map<std::tuple<size_t, size_t, std::string>, int128>;

// The monthly UTC period starting at `start_ns`; invalid_argument if it is
// not the start of a month.
result<std::pair<int64_t, int64_t>> monthly_period(int64_t start_ns);

// Collects one customer's hourly rollups (and raw windows of split hours) for
// one period and prices them.
class invoice_builder {
 public:
  // `versions` ascending by effective_from (validated by the caller).
  invoice_builder(std::string customer_id, int64_t period_start_ns, int64_t period_end_ns,
                  std::vector<plan_version> versions);

  // Hours in which a version takes effect strictly inside the hour: the
  // caller feeds the raw windows overlapping them through add_window.
  const std::vector<int64_t>& split_hours() const { return split_hours_; }

  // An hourly rollup bucket inside the period (others are ignored).
  void add_hour(const rollup_id& id, const rollup_value& value);
  // A raw window; only the parts inside split hours are used.
  void add_window(const usage_window& window);

  // failed_precondition without plan versions, out_of_range on overflow,
  // internal if raw windows exceed their hour's rollup.
  result<invoice> finish() &&;

  // The usage the invoice's usage lines price, by (version, dimension,
  // region), without pricing it: what live cost-to-date keeps adding to.
  // Errors as finish().
  result<usage_quantities> usage() &&;

 private:
  size_t version_at(int64_t instant_ns) const;
  // Moves the split hours' usage into usage_, attributed to their versions.
  status settle_split_hours();

  invoice invoice_;
  std::vector<plan_version> versions_;
  std::vector<int64_t> split_hours_;
  // (hour, region, vm) -> rollup, for split hours only.
  std::map<std::tuple<int64_t, std::string, std::string>, rollup_value> split_rollups_;
  // (hour, region, vm) -> raw windows overlapping that split hour.
  std::map<std::tuple<int64_t, std::string, std::string>, std::vector<usage_window>> split_windows_;
  usage_quantities usage_;
  std::map<std::pair<std::string, std::string>, rollup_value> vms_;
  status failed_;
};

// Appends an adjustment line of `amount` for the period starting at
// `adjusted_period_start_ns` and updates the totals.
void add_adjustment(invoice& target, int64_t adjusted_period_start_ns, const money& amount);

// Sum of the adjustment lines of `source` for the period starting at `period_start_ns`.
money adjustments_for(const invoice& source, int64_t period_start_ns);

// What the usage of `windows` inside [from_ns, to_ns) costs under `versions`
// (ascending): each window's part in force under each version (usage_within),
// priced per (version, dimension, region) as if the range were a period of
// its own (tiers start at zero in the range); no base fee, no minimum.
// failed_precondition without versions.
result<money> usage_cost(const std::vector<plan_version>& versions,
                         const std::vector<usage_window>& windows, int64_t from_ns, int64_t to_ns);

// The range [from_ns, to_ns) cut where a plan version takes effect: part i
// is [bounds[i], bounds[i + 1]), priced under versions[version_of[i]].
struct version_parts {
  std::vector<int64_t> bounds;
  std::vector<size_t> version_of;
};
version_parts split_by_version(const std::vector<plan_version>& versions, int64_t from_ns,
                               int64_t to_ns);

// Adds the billed quantities of `usage` under (version, dimension, region).
void add_quantities(usage_quantities& quantities, size_t version_index, const std::string& region,
                    const usage_totals& usage);

// What `quantities` cost under `versions`: the sum of their usage lines.
result<money> price_quantities(const std::vector<plan_version>& versions,
                               const usage_quantities& quantities);

// `quantity` base units in billing units as a decimal, rounded half-even to
// 12 fractional digits (exact whenever the quotient has at most 12).
std::string format_units(int128 quantity, int128 base_units_per_unit);

}  // namespace billing::model
