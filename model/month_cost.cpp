#include "model/month_cost.hpp"

#include <algorithm>

#include "model/calendar.hpp"

namespace billing::model {

month_cost::additions::additions(const month_cost& cost)
    : month_start_ns_(cost.month_start_ns_), split_hours_(cost.split_hours_) {}

status month_cost::additions::add(const usage_window& window) {
  const int64_t month_end = next_bucket_start(granularity::month, month_start_ns_);
  const auto shares = split_into_hours(window);
  rollup_accumulator::bucket_map added;
  for (const auto& share : shares) {
    if (share.hour_start_ns < month_start_ns_ || share.hour_start_ns >= month_end) continue;
    rollup_id id{granularity::hour, share.hour_start_ns, window.region, window.vm_id};
    const auto held = hours_.find(id);
    rollup_value value = held == hours_.end() ? rollup_value{} : held->second;
    rollup_value piece;
    piece.totals = share.totals;
    if (status merged = value.merge(piece); !merged.ok()) return merged;
    added.insert_or_assign(std::move(id), value);
  }
  for (auto& [id, value] : added) hours_.insert_or_assign(id, std::move(value));
  const bool in_split_hour =
      std::any_of(split_hours_.begin(), split_hours_.end(), [&](int64_t hour) {
        return window.window_start_ns < hour + kNanosPerHour && window.window_end_ns > hour;
      });
  if (in_split_hour) split_windows_.push_back(window);
  return status::ok_status();
}

month_cost::month_cost(std::string customer_id, int64_t month_start_ns,
                       std::vector<plan_version> versions, usage_quantities quantities)
    : customer_id_(std::move(customer_id)),
      month_start_ns_(month_start_ns),
      month_end_ns_(next_bucket_start(granularity::month, month_start_ns)),
      versions_(std::move(versions)),
      quantities_(std::move(quantities)) {
  split_hours_ =
      invoice_builder(customer_id_, month_start_ns_, month_end_ns_, versions_).split_hours();
}

status month_cost::apply(const additions& added) {
  if (versions_.empty() || added.empty()) return status::ok_status();
  invoice_builder builder(customer_id_, month_start_ns_, month_end_ns_, versions_);
  for (const auto& [id, value] : added.hours_) builder.add_hour(id, value);
  for (const auto& window : added.split_windows_) builder.add_window(window);
  auto usage = std::move(builder).usage();
  if (!usage.ok()) return usage.error();
  usage_quantities sum = quantities_;
  for (const auto& [key, quantity] : usage.value()) {
    int128& total = sum[key];
    // Far beyond any month's usage (2^64 units a window), but never wrap.
    if (quantity > (int128{1} << 120) - total) {
      return status{status_code::out_of_range, "month-to-date usage overflows"};
    }
    total += quantity;
  }
  quantities_ = std::move(sum);
  return status::ok_status();
}

result<std::string> month_cost::cost() const {
  if (versions_.empty()) return std::string{};
  auto priced = price_quantities(versions_, quantities_);
  if (!priced.ok()) return priced.error();
  return format_money(priced.value());
}

}  // namespace billing::model
