#include "gateway/services/invoice_convert.hpp"

#include <fmt/format.h>

#include "gateway/services/convert.hpp"

namespace billing::gateway {
namespace {

constexpr int multiplier_digits = 6;  // model::multiplier_scale = 10^6

status invalid(std::string message) {
  return status{status_code::invalid_argument, std::move(message)};
}

// A wire decimal, or `what` named in the error.
result<model::int128> decimal(std::string_view what, const std::string& text, int scale) {
  if (text.empty()) return model::int128{0};
  auto parsed = model::parse_decimal(text, scale);
  if (!parsed.ok()) return invalid(fmt::format("{}: {}", what, parsed.error().message()));
  return parsed.value();
}

// Tier bound in billing units -> base units, exactly.
result<model::int128> tier_bound(const std::string& up_to, model::dimension which) {
  if (up_to.empty()) return model::int128{0};
  auto scaled = decimal("tier up_to", up_to, model::rate_scale);
  if (!scaled.ok()) return scaled;
  model::int128 one = 1;
  for (int i = 0; i < model::rate_scale; ++i) one *= 10;
  auto product = model::checked_multiply(scaled.value(), model::info(which).base_units_per_unit);
  if (!product.ok() || product.value() % one != 0 || scaled.value() <= 0) {
    return invalid(fmt::format("tier up_to \"{}\" is not a positive whole number of {} base units",
                               up_to, model::info(which).name));
  }
  return product.value() / one;
}

status set_seed_rate(model::plan_version& version, double value,
                     std::initializer_list<model::dimension> dimensions, std::string_view field) {
  auto converted = model::rate_from_double(value);
  if (!converted.ok())
    return invalid(fmt::format("rates.{}: {}", field, converted.error().message()));
  for (auto which : dimensions) {
    version.prices[static_cast<size_t>(which)].tiers = {{0, converted.value()}};
  }
  return status::ok_status();
}

}  // namespace

result<model::plan_version> to_plan_version(const v1::PlanVersion& wire) {
  model::plan_version version;
  if (!wire.has_effective_from()) return invalid("effective_from is required");
  version.effective_from_ns = to_unix_ns(wire.effective_from());
  if (version.effective_from_ns == model::kNoTimestamp)
    return invalid("effective_from is out of range");
  if (wire.has_rates()) {
    using model::dimension;
    const auto& rates = wire.rates();
    for (status set :
         {set_seed_rate(version, rates.cpu_per_core_hour(), {dimension::cpu}, "cpu_per_core_hour"),
          set_seed_rate(version, rates.memory_per_gb_hour(), {dimension::memory},
                        "memory_per_gb_hour"),
          set_seed_rate(version, rates.disk_io_per_gb(),
                        {dimension::disk_read, dimension::disk_write}, "disk_io_per_gb"),
          set_seed_rate(version, rates.network_per_gb(),
                        {dimension::network_rx, dimension::network_tx}, "network_per_gb")}) {
      if (!set.ok()) return set;
    }
  }
  for (const auto& price : wire.prices()) {
    if (price.dimension() <= v1::DIMENSION_UNSPECIFIED ||
        price.dimension() > static_cast<int>(model::dimension_count)) {
      return invalid("prices[].dimension must be a known dimension");
    }
    const auto which = static_cast<model::dimension>(price.dimension() - 1);
    auto& tiers = version.prices[static_cast<size_t>(which)].tiers;
    tiers.clear();
    for (const auto& tier : price.tiers()) {
      auto bound = tier_bound(tier.up_to(), which);
      if (!bound.ok()) return bound.error();
      if (tier.price().empty()) return invalid("every tier needs a price");
      auto rate = model::parse_rate(tier.price());
      if (!rate.ok()) return invalid(fmt::format("tier price: {}", rate.error().message()));
      tiers.push_back({bound.value(), rate.value()});
    }
  }
  for (const auto& [region, text] : wire.region_multipliers()) {
    auto multiplier = decimal("region multiplier", text, multiplier_digits);
    if (!multiplier.ok()) return multiplier.error();
    version.region_multipliers[region] = multiplier.value();
  }
  auto fee = decimal("monthly_base_fee", wire.monthly_base_fee(), model::amount_scale);
  if (!fee.ok()) return fee.error();
  auto minimum = decimal("monthly_minimum", wire.monthly_minimum(), model::amount_scale);
  if (!minimum.ok()) return minimum.error();
  version.monthly_base_fee.nanos = fee.value();
  version.monthly_minimum.nanos = minimum.value();
  if (status bad = model::validate(version); !bad.ok()) return bad;
  return version;
}

v1::PlanVersion to_proto(const model::plan_version& version) {
  v1::PlanVersion wire;
  *wire.mutable_effective_from() = to_timestamp(version.effective_from_ns);
  for (size_t d = 0; d < model::dimension_count; ++d) {
    const auto& tiers = version.prices[d].tiers;
    if (tiers.empty()) continue;
    auto* price = wire.add_prices();
    price->set_dimension(static_cast<v1::Dimension>(d + 1));
    for (const auto& tier : tiers) {
      auto* out = price->add_tiers();
      if (tier.up_to_base_units != 0) {
        out->set_up_to(
            model::format_units(tier.up_to_base_units,
                                model::info(static_cast<model::dimension>(d)).base_units_per_unit));
      }
      out->set_price(model::format_rate(tier.price));
    }
  }
  for (const auto& [region, multiplier] : version.region_multipliers) {
    (*wire.mutable_region_multipliers())[region] =
        model::format_decimal(multiplier, multiplier_digits);
  }
  wire.set_monthly_base_fee(model::format_money(version.monthly_base_fee));
  wire.set_monthly_minimum(model::format_money(version.monthly_minimum));
  return wire;
}

v1::Invoice to_proto(const model::invoice& bill) {
  v1::Invoice wire;
  wire.set_customer_id(bill.customer_id);
  *wire.mutable_period_start() = to_timestamp(bill.period_start_ns);
  *wire.mutable_period_end() = to_timestamp(bill.period_end_ns);
  *wire.mutable_active_from() = to_timestamp(bill.active_from_ns);
  for (const auto& line : bill.lines) {
    auto* out = wire.add_lines();
    out->set_kind(static_cast<v1::LineKind>(line.kind));
    out->set_amount(model::format_money(line.amount));
    switch (line.kind) {
      case model::line_kind::usage: {
        const auto& unit = model::info(line.which);
        out->set_dimension(static_cast<v1::Dimension>(static_cast<int>(line.which) + 1));
        out->set_region(line.region);
        out->set_tier(line.tier + 1);
        out->set_quantity(model::format_units(line.quantity, unit.base_units_per_unit));
        out->set_unit(std::string(unit.unit));
        out->set_rate(model::format_rate(line.price));
        out->set_multiplier(model::format_decimal(line.multiplier, multiplier_digits));
        break;
      }
      case model::line_kind::base_fee:
        out->set_quantity(model::format_units(line.quantity, model::nanos_per_hour));
        out->set_unit("hour");
        break;
      case model::line_kind::minimum:
        break;
      case model::line_kind::adjustment:
        *out->mutable_adjusted_period_start() = to_timestamp(line.adjusted_period_start_ns);
        break;
    }
    if (line.kind == model::line_kind::usage || line.kind == model::line_kind::base_fee) {
      *out->mutable_version_effective_from() = to_timestamp(line.version_effective_from_ns);
      out->set_quantity_base_units(model::format_decimal(line.quantity, 0));
    }
  }
  model::int128 vm_nanos = 0;
  for (const auto& vm : bill.vms) {
    auto* out = wire.add_vms();
    out->set_vm_id(vm.vm_id);
    out->set_region(vm.region);
    out->set_active_nanos(vm.active_nanos);
    out->set_hours(model::format_units(vm.active_nanos, model::nanos_per_hour));
    *out->mutable_start_time() = to_timestamp(vm.first_active_ns);
    *out->mutable_stop_time() = to_timestamp(vm.last_active_ns);
    vm_nanos += vm.active_nanos;
  }
  wire.set_total_vm_hours(model::format_units(vm_nanos, model::nanos_per_hour));
  wire.set_usage_subtotal(model::format_money(bill.usage_subtotal));
  wire.set_subtotal(model::format_money(bill.subtotal));
  wire.set_adjustments(model::format_money(bill.adjustments));
  wire.set_total(model::format_money(bill.total));
  wire.set_finalized(bill.finalized);
  wire.set_number(bill.number);
  if (bill.finalized) *wire.mutable_finalized_at() = to_timestamp(bill.finalized_at_ns);
  wire.set_content_hash(bill.content_hash);
  return wire;
}

}  // namespace billing::gateway
