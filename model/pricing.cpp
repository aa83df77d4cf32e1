#include "model/pricing.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace billing::model {
namespace {

constexpr std::array<dimension_info, dimension_count> dimension_table = {{
    {"cpu", "core-hour", nanos_per_hour},
    {"memory", "GiB-hour", byte_seconds_per_gib_hour},
    {"disk_read", "GB", bytes_per_gb},
    {"disk_write", "GB", bytes_per_gb},
    {"network_rx", "GB", bytes_per_gb},
    {"network_tx", "GB", bytes_per_gb},
    {"vm_time", "VM-hour", nanos_per_hour},
}};

status invalid(std::string message) {
  return status{status_code::invalid_argument, std::move(message)};
}

// The amount of `quantity` base units at `price` × multiplier, rounded once.
result<money> line_amount(int128 quantity, const rate& price, int128 multiplier,
                          int128 base_units_per_unit) {
  auto scaled_quantity = checked_multiply(quantity, multiplier);
  if (!scaled_quantity.ok()) return scaled_quantity.error();
  auto denominator = checked_multiply(base_units_per_unit, multiplier_scale);
  if (!denominator.ok()) return denominator.error();
  return price_quantity(scaled_quantity.value(), price, denominator.value());
}

}  // namespace

const dimension_info& info(dimension which) {
  return dimension_table[static_cast<size_t>(which)];
}

status validate(const plan_version& version) {
  for (size_t d = 0; d < dimension_count; ++d) {
    const auto& tiers = version.prices[d].tiers;
    const std::string_view name = dimension_table[d].name;
    for (size_t t = 0; t < tiers.size(); ++t) {
      const bool last = t + 1 == tiers.size();
      if (tiers[t].price.picos < 0)
        return invalid(fmt::format("{} tier {} has a negative price", name, t + 1));
      if (last && tiers[t].up_to_base_units != 0) {
        return invalid(fmt::format("the last {} tier must be unbounded", name));
      }
      if (!last && tiers[t].up_to_base_units <= 0) {
        return invalid(fmt::format("{} tier {} needs a positive upper bound", name, t + 1));
      }
      if (!last && t > 0 && tiers[t].up_to_base_units <= tiers[t - 1].up_to_base_units) {
        return invalid(fmt::format("{} tier bounds must ascend", name));
      }
    }
  }
  for (const auto& [region, multiplier] : version.region_multipliers) {
    if (multiplier <= 0)
      return invalid(fmt::format("region {} has a non-positive multiplier", region));
  }
  if (version.monthly_base_fee.nanos < 0 || version.monthly_minimum.nanos < 0) {
    return invalid("monthly fees and minimums cannot be negative");
  }
  return {};
}

result<std::vector<invoice_line>> price_usage(const std::vector<plan_version>& versions,
                                              const std::vector<usage_slice>& slices) {
  std::vector<invoice_line> lines;
  std::array<int128, dimension_count> cumulative{};
  for (const auto& slice : slices) {
    if (slice.version_index >= versions.size()) {
      return invalid(fmt::format("usage refers to plan version {} of {}", slice.version_index,
                                 versions.size()));
    }
    if (slice.quantity < 0) return invalid("usage quantities cannot be negative");
    const plan_version& version = versions[slice.version_index];
    const auto d = static_cast<size_t>(slice.which);
    const auto& tiers = version.prices[d].tiers;
    const auto found = version.region_multipliers.find(slice.region);
    const int128 multiplier =
        found == version.region_multipliers.end() ? multiplier_scale : found->second;
    int128 remaining = slice.quantity;
    for (size_t t = 0; t < tiers.size() && remaining > 0; ++t) {
      const int128 bound = tiers[t].up_to_base_units;
      if (bound != 0 && cumulative[d] >= bound) continue;  // tier already used up
      const int128 in_tier = bound == 0 ? remaining : std::min(remaining, bound - cumulative[d]);
      auto amount =
          line_amount(in_tier, tiers[t].price, multiplier, dimension_table[d].base_units_per_unit);
      if (!amount.ok()) return amount.error();
      lines.push_back(invoice_line{slice.which, slice.region, slice.version_index, t, in_tier,
                                   tiers[t].price, multiplier, amount.value()});
      cumulative[d] += in_tier;
      remaining -= in_tier;
    }
    cumulative[d] += remaining;  // a free dimension (no tiers) still counts
  }
  return lines;
}

result<money> prorate(const money& amount, int64_t active_ns, int64_t period_ns) {
  if (period_ns <= 0 || active_ns < 0 || active_ns > period_ns) {
    return invalid(
        fmt::format("cannot prorate over {} ns active of a {} ns period", active_ns, period_ns));
  }
  auto numerator = checked_multiply(amount.nanos, active_ns);
  if (!numerator.ok()) return numerator.error();
  return money{divide_half_even(numerator.value(), period_ns)};
}

}  // namespace billing::model
