#include "model/invoice.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "model/calendar.hpp"
#include "model/usage_query.hpp"

namespace billing::model {
namespace {

// The usage_totals field each billed dimension is measured by, in dimension order.
constexpr std::array<usage_sum usage_totals::*, dimension_count> kBilledField = {
    &usage_totals::cpu_time_nanos,   &usage_totals::memory_bytes_seconds,
    &usage_totals::disk_read_bytes,  &usage_totals::disk_write_bytes,
    &usage_totals::network_rx_bytes, &usage_totals::network_tx_bytes,
    &usage_totals::vm_active_nanos,
};

int128 power_of_ten(int exponent) {
  int128 value = 1;
  for (int i = 0; i < exponent; ++i) value *= 10;
  return value;
}

void add_to(money& sum, const money& amount) {
  sum.nanos += amount.nanos;
}

// The quantities as slices in (version, dimension, region) order.
std::vector<usage_slice> slices_of(const usage_quantities& quantities) {
  std::vector<usage_slice> slices;
  for (const auto& [key, quantity] : quantities) {
    const auto& [version_index, d, region] = key;
    slices.push_back({static_cast<dimension>(d), region, version_index, quantity});
  }
  return slices;
}

}  // namespace

void add_quantities(usage_quantities& quantities, size_t version_index, const std::string& region,
                    const usage_totals& usage) {
  for (size_t d = 0; d < dimension_count; ++d) {
    // Totals never pass kUsageSumMax = 2^127-1, so the quantity fits.
    const auto quantity = static_cast<int128>(usage.*kBilledField[d]);
    if (quantity != 0) quantities[{version_index, d, region}] += quantity;
  }
}

result<std::pair<int64_t, int64_t>> monthly_period(int64_t start_ns) {
  if (start_ns == kNoTimestamp || !is_aligned(granularity::month, start_ns)) {
    return status{status_code::invalid_argument,
                  "a billing period starts at 00:00 UTC on the first day of a month"};
  }
  return std::pair{start_ns, next_bucket_start(granularity::month, start_ns)};
}

invoice_builder::invoice_builder(std::string customer_id, int64_t period_start_ns,
                                 int64_t period_end_ns, std::vector<plan_version> versions)
    : versions_(std::move(versions)) {
  invoice_.customer_id = std::move(customer_id);
  invoice_.period_start_ns = period_start_ns;
  invoice_.period_end_ns = period_end_ns;
  invoice_.active_from_ns = period_end_ns;
  for (const auto& version : versions_) {
    const int64_t at = version.effective_from_ns;
    if (at <= period_start_ns || at >= period_end_ns || at % kNanosPerHour == 0) continue;
    const int64_t hour = bucket_start(granularity::hour, at);
    if (split_hours_.empty() || split_hours_.back() != hour) split_hours_.push_back(hour);
  }
}

size_t invoice_builder::version_at(int64_t instant_ns) const {
  size_t index = 0;
  for (size_t i = 0; i < versions_.size(); ++i) {
    if (versions_[i].effective_from_ns <= instant_ns) index = i;
  }
  return index;
}

void invoice_builder::add_hour(const rollup_id& id, const rollup_value& value) {
  if (!failed_.ok() || id.grain != granularity::hour) return;
  if (id.bucket_start_ns < invoice_.period_start_ns || id.bucket_start_ns >= invoice_.period_end_ns)
    return;
  if (value.totals.vm_active_nanos > 0) {
    invoice_.active_from_ns = std::min(invoice_.active_from_ns, value.first_active_ns);
  }
  if (status merged = vms_[{id.vm_id, id.region}].merge(value); !merged.ok()) {
    failed_ = merged;
    return;
  }
  if (std::binary_search(split_hours_.begin(), split_hours_.end(), id.bucket_start_ns)) {
    split_rollups_[{id.bucket_start_ns, id.region, id.vm_id}] = value;
    return;
  }
  add_quantities(usage_, version_at(id.bucket_start_ns), id.region, value.totals);
}

void invoice_builder::add_window(const usage_window& window) {
  for (int64_t hour : split_hours_) {
    if (window.window_start_ns < hour + kNanosPerHour && window.window_end_ns > hour) {
      split_windows_[{hour, window.region, window.vm_id}].push_back(window);
    }
  }
}

status invoice_builder::settle_split_hours() {
  if (versions_.empty()) {
    return status{
        status_code::failed_precondition,
        fmt::format("no price plan for customer '{}' and no default plan", invoice_.customer_id)};
  }
  if (!failed_.ok()) return failed_;

  // Split hours: every part but the last from the raw windows, the last is
  // what remains of the hour's rollup.
  for (const auto& [key, rollup] : split_rollups_) {
    const auto& [hour, region, vm_id] = key;
    std::vector<int64_t> bounds = {hour};
    for (const auto& version : versions_) {
      if (version.effective_from_ns > hour && version.effective_from_ns < hour + kNanosPerHour)
        bounds.push_back(version.effective_from_ns);
    }
    usage_totals remaining = rollup.totals;
    const auto found = split_windows_.find(key);
    for (size_t part = 0; part + 1 < bounds.size(); ++part) {
      usage_totals inside;
      if (found != split_windows_.end()) {
        for (const auto& window : found->second) {
          if (status added = inside.add(usage_within(window, bounds[part], bounds[part + 1]));
              !added.ok())
            return added;
        }
      }
      for (auto field : kBilledField) {
        if (inside.*field > remaining.*field) {
          return status{status_code::internal,
                        fmt::format("raw windows of '{}' exceed the rollup of their hour",
                                    invoice_.customer_id)};
        }
        remaining.*field -= inside.*field;
      }
      add_quantities(usage_, version_at(bounds[part]), region, inside);
    }
    add_quantities(usage_, version_at(bounds.back()), region, remaining);
  }
  split_rollups_.clear();
  split_windows_.clear();
  return status::ok_status();
}

result<usage_quantities> invoice_builder::usage() && {
  if (status settled = settle_split_hours(); !settled.ok()) return settled;
  return std::move(usage_);
}

result<invoice> invoice_builder::finish() && {
  if (status settled = settle_split_hours(); !settled.ok()) return settled;

  // Usage lines: versions in time order, then dimension, then region (map order).
  auto priced = price_usage(versions_, slices_of(usage_));
  if (!priced.ok()) return priced.error();
  for (const auto& line : priced.value()) {
    invoice_item item;
    item.kind = line_kind::usage;
    item.which = line.which;
    item.region = line.region;
    item.version_effective_from_ns = versions_[line.version_index].effective_from_ns;
    item.tier = static_cast<uint32_t>(line.tier_index);
    item.quantity = line.quantity;
    item.price = line.price;
    item.multiplier = line.multiplier;
    item.amount = line.amount;
    add_to(invoice_.usage_subtotal, item.amount);
    invoice_.lines.push_back(std::move(item));
  }
  invoice_.subtotal = invoice_.usage_subtotal;

  // Base fees and the minimum, prorated over the active part of each version.
  const int64_t period_ns = invoice_.period_end_ns - invoice_.period_start_ns;
  money prorated_minimum;
  for (size_t v = 0; v < versions_.size(); ++v) {
    const int64_t from = std::max(invoice_.active_from_ns, v == 0 ? invoice_.period_start_ns
                                                                  : versions_[v].effective_from_ns);
    const int64_t to = v + 1 == versions_.size()
                           ? invoice_.period_end_ns
                           : std::min(invoice_.period_end_ns, versions_[v + 1].effective_from_ns);
    if (from >= to) continue;
    auto fee = prorate(versions_[v].monthly_base_fee, to - from, period_ns);
    auto minimum = prorate(versions_[v].monthly_minimum, to - from, period_ns);
    if (!fee.ok()) return fee.error();
    if (!minimum.ok()) return minimum.error();
    add_to(prorated_minimum, minimum.value());
    if (fee.value().nanos == 0) continue;
    invoice_item item;
    item.kind = line_kind::base_fee;
    item.version_effective_from_ns = versions_[v].effective_from_ns;
    item.quantity = to - from;
    item.amount = fee.value();
    add_to(invoice_.subtotal, item.amount);
    invoice_.lines.push_back(std::move(item));
  }
  if (prorated_minimum > invoice_.usage_subtotal) {
    invoice_item item;
    item.kind = line_kind::minimum;
    item.amount.nanos = prorated_minimum.nanos - invoice_.usage_subtotal.nanos;
    add_to(invoice_.subtotal, item.amount);
    invoice_.lines.push_back(std::move(item));
  }
  invoice_.total = invoice_.subtotal;

  for (const auto& [key, value] : vms_) {
    if (value.totals.vm_active_nanos == 0) continue;
    // One VM's active time in a month: far below 2^64 ns.
    invoice_.vms.push_back({key.first, key.second, saturate_u64(value.totals.vm_active_nanos),
                            value.first_active_ns, value.last_active_ns});
  }
  return std::move(invoice_);
}

void add_adjustment(invoice& target, int64_t adjusted_period_start_ns, const money& amount) {
  invoice_item item;
  item.kind = line_kind::adjustment;
  item.adjusted_period_start_ns = adjusted_period_start_ns;
  item.amount = amount;
  add_to(target.adjustments, amount);
  add_to(target.total, amount);
  target.lines.push_back(std::move(item));
}

money adjustments_for(const invoice& source, int64_t period_start_ns) {
  money sum;
  for (const auto& line : source.lines) {
    if (line.kind == line_kind::adjustment && line.adjusted_period_start_ns == period_start_ns)
      add_to(sum, line.amount);
  }
  return sum;
}

version_parts split_by_version(const std::vector<plan_version>& versions, int64_t from_ns,
                               int64_t to_ns) {
  version_parts parts{{from_ns}, {0}};
  for (size_t v = 0; v < versions.size(); ++v) {
    const int64_t at = versions[v].effective_from_ns;
    if (at <= from_ns) {
      parts.version_of.front() = v;
    } else if (at < to_ns) {
      parts.bounds.push_back(at);
      parts.version_of.push_back(v);
    }
  }
  parts.bounds.push_back(to_ns);
  return parts;
}

result<money> price_quantities(const std::vector<plan_version>& versions,
                               const usage_quantities& quantities) {
  auto lines = price_usage(versions, slices_of(quantities));
  if (!lines.ok()) return lines.error();
  money cost;
  for (const auto& line : lines.value()) add_to(cost, line.amount);
  return cost;
}

result<money> usage_cost(const std::vector<plan_version>& versions,
                         const std::vector<usage_window>& windows, int64_t from_ns, int64_t to_ns) {
  if (versions.empty()) return status{status_code::failed_precondition, "no price plan"};
  const auto parts = split_by_version(versions, from_ns, to_ns);
  usage_quantities quantities;
  for (const auto& window : windows) {
    for (size_t part = 0; part + 1 < parts.bounds.size(); ++part) {
      add_quantities(quantities, parts.version_of[part], window.region,
                     usage_within(window, parts.bounds[part], parts.bounds[part + 1]));
    }
  }
  return price_quantities(versions, quantities);
}

std::string format_units(int128 quantity, int128 base_units_per_unit) {
  constexpr int scale = 12;
  return format_decimal(divide_half_even(quantity * power_of_ten(scale), base_units_per_unit),
                        scale);
}

}  // namespace billing::model
