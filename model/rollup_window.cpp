#include "model/rollup_window.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <tuple>

#include "model/calendar.hpp"
#include "model/money.hpp"

namespace billing::model {
namespace {

int64_t hour_floor(int64_t ns) {
  return bucket_start(granularity::hour, ns);
}

int64_t hour_ceil(int64_t ns) {
  const int64_t floor = hour_floor(ns);
  return floor == ns ? ns : floor + kNanosPerHour;
}

// Far enough from the ends of int64 that hour arithmetic around the range
// cannot overflow. Nothing is stored out there (windows start after 2000 and
// at most minutes in the future); such a range is simply read from raw windows.
bool hours_representable(int64_t from_ns, int64_t to_ns) {
  constexpr int64_t margin = 2 * kNanosPerHour;
  return from_ns > std::numeric_limits<int64_t>::min() + margin &&
         to_ns < std::numeric_limits<int64_t>::max() - margin;
}

}  // namespace

rollup_window_builder::rollup_window_builder(window_query query, const query_limits& limits,
                                             std::vector<plan_version> versions)
    : query_(std::move(query)),
      cadence_ns_(std::max<int64_t>(limits.expected_cadence_ns, 1)),
      versions_(std::move(versions)),
      rollup_from_(query_.start_ns),
      rollup_to_(query_.start_ns),
      recorded_(query_.start_ns, query_.end_ns) {
  const int64_t from = query_.start_ns;
  const int64_t to = query_.end_ns;
  if (hours_representable(from, to) && hour_ceil(from) < hour_floor(to)) {
    rollup_from_ = hour_ceil(from);
    rollup_to_ = hour_floor(to);
  }
  if (rollup_from_ >= rollup_to_) {
    cut_pieces_.emplace_back(from, to);
    return;
  }
  if (from < rollup_from_) cut_pieces_.emplace_back(from, rollup_from_);
  if (rollup_to_ < to) cut_pieces_.emplace_back(rollup_to_, to);
  // The cost splits the range where a version takes effect; an hour split
  // there is priced from its windows, apportioned on either side.
  if (versions_.empty()) return;
  const auto parts = split_by_version(versions_, from, to);
  for (size_t i = 1; i + 1 < parts.bounds.size(); ++i) {
    const int64_t hour = hour_floor(parts.bounds[i]);
    if (hour != parts.bounds[i]) cut_pieces_.emplace_back(hour, hour + kNanosPerHour);
  }
}

bool rollup_window_builder::needs_values(int64_t start_ns, int64_t end_ns) const {
  return std::any_of(cut_pieces_.begin(), cut_pieces_.end(), [&](const auto& piece) {
    return start_ns < piece.second && end_ns > piece.first;
  });
}

rollup_window_builder::vm_windows& rollup_window_builder::vm(std::string_view region,
                                                             std::string_view vm_id) {
  // The scan visits a customer's VMs in the same order minute after minute,
  // so the VM after the last one is nearly always the next.
  for (size_t guess : {last_vm_ + 1, size_t{0}}) {
    if (guess < vms_.size() && vms_[guess].vm_id == vm_id && vms_[guess].region == region) {
      last_vm_ = guess;
      return vms_[guess];
    }
  }
  // Length-prefixed region (at most 255 bytes in a key), so no two pairs meet.
  key_buffer_.assign(1, static_cast<char>(region.size())).append(region).append(vm_id);
  auto [found, inserted] = vm_index_.try_emplace(key_buffer_, vms_.size());
  if (inserted) vms_.push_back({std::string(vm_id), std::string(region), {}, {}, {}});
  last_vm_ = found->second;
  return vms_[last_vm_];
}

namespace {

void add_to(std::vector<window_bounds>& windows, uint64_t expected, const window_bounds& bounds) {
  // Room for the windows the rollups count, a few edge windows and the
  // cadence scanned before the range, instead of growing one by one.
  if (windows.empty()) windows.reserve(expected + 8);
  windows.push_back(bounds);
}

}  // namespace

void rollup_window_builder::add_bounds(std::string_view region, std::string_view vm_id,
                                       const window_bounds& bounds) {
  auto& target = vm(region, vm_id);
  add_to(target.windows, target.windows_in_hours, bounds);
}

void rollup_window_builder::add_window(usage_window window) {
  auto& target = vm(window.region, window.vm_id);
  add_to(target.windows, target.windows_in_hours,
         {window.window_start_ns, window.window_end_ns, window.memory_bytes_used});
  target.valued.push_back(std::move(window));
}

void rollup_window_builder::add_hour(const rollup_id& id, const rollup_value& value) {
  if (id.grain != granularity::hour || id.bucket_start_ns < rollup_from_ ||
      id.bucket_start_ns >= rollup_to_) {
    return;
  }
  auto& target = vm(id.region, id.vm_id);
  target.hours.emplace_back(id.bucket_start_ns, value);
  target.windows_in_hours += value.totals.window_count;
}

void rollup_window_builder::add_gap(usage_gap gap) {
  recorded_.add(std::move(gap));
}

bool rollup_window_builder::rollups_match(const vm_windows& vm) {
  if (rollup_from_ >= rollup_to_) return vm.hours.empty();
  tally_.assign(static_cast<size_t>((rollup_to_ - rollup_from_) / kNanosPerHour), {0, 0});
  for (const auto& window : vm.windows) {
    for (int64_t hour = std::max(rollup_from_, hour_floor(window.window_start_ns));
         hour < rollup_to_ && hour < window.window_end_ns; hour += kNanosPerHour) {
      auto& [active, starts] = tally_[static_cast<size_t>((hour - rollup_from_) / kNanosPerHour)];
      active += static_cast<uint64_t>(std::min(hour + kNanosPerHour, window.window_end_ns) -
                                      std::max(hour, window.window_start_ns));
      if (window.window_start_ns >= hour) ++starts;  // the hour it starts in
    }
  }
  for (const auto& [hour, value] : vm.hours) {
    auto& counted = tally_[static_cast<size_t>((hour - rollup_from_) / kNanosPerHour)];
    if (counted.first != value.totals.vm_active_nanos ||
        counted.second != value.totals.window_count)
      return false;
    counted = {0, 0};
  }
  // Windows in an hour without a rollup.
  return std::all_of(tally_.begin(), tally_.end(), [](const auto& counted) {
    return counted == std::pair<uint64_t, uint64_t>{};
  });
}

bool rollup_window_builder::usage_over(const vm_windows& vm, int64_t from_ns, int64_t to_ns,
                                       usage_totals& sum) const {
  // Every instant of [from_ns, to_ns) outside its whole hours lies in a cut
  // piece, where only the valued windows reach.
  auto add_valued = [&](int64_t from, int64_t to) {
    if (from >= to) return true;
    return std::all_of(vm.valued.begin(), vm.valued.end(), [&](const usage_window& window) {
      return sum.add(usage_within(window, from, to)).ok();
    });
  };
  if (rollup_from_ >= rollup_to_) return add_valued(from_ns, to_ns);
  const int64_t whole_from = hour_ceil(from_ns);
  const int64_t whole_to = hour_floor(to_ns);
  if (whole_from >= whole_to) return add_valued(from_ns, to_ns);
  for (const auto& [hour, value] : vm.hours) {
    if (hour >= whole_from && hour < whole_to && !sum.add(value.totals).ok()) return false;
  }
  return add_valued(from_ns, whole_from) && add_valued(whole_to, to_ns);
}

bool rollup_window_builder::add_cost(billing_window& report) const {
  const auto parts = split_by_version(versions_, query_.start_ns, query_.end_ns);
  usage_quantities quantities;
  for (const auto& vm : vms_) {
    for (size_t part = 0; part + 1 < parts.bounds.size(); ++part) {
      usage_totals usage;
      if (!usage_over(vm, parts.bounds[part], parts.bounds[part + 1], usage)) return false;
      add_quantities(quantities, parts.version_of[part], vm.region, usage);
    }
  }
  auto cost = price_quantities(versions_, quantities);
  if (!cost.ok()) return false;
  report.cost = format_money(cost.value());
  return true;
}

std::optional<billing_window> rollup_window_builder::finish() && {
  billing_window report;
  report.customer_id = query_.customer_id;
  std::vector<size_t> order(vms_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(vms_[a].vm_id, vms_[a].region) < std::tie(vms_[b].vm_id, vms_[b].region);
  });
  auto by_time = [](const window_bounds& a, const window_bounds& b) {
    return std::tie(a.window_start_ns, a.window_end_ns) <
           std::tie(b.window_start_ns, b.window_end_ns);
  };
  for (size_t index : order) {
    auto& vm = vms_[index];
    if (!rollups_match(vm)) return std::nullopt;
    // A scan yields each VM's windows in this order already.
    if (!std::is_sorted(vm.windows.begin(), vm.windows.end(), by_time)) {
      std::sort(vm.windows.begin(), vm.windows.end(), by_time);
    }
    vm_activity activity{vm.vm_id, vm.region, {}, {}};
    trace_activity(vm.windows, query_, cadence_ns_, activity, report.gaps);
    if (activity.spans.empty()) continue;  // only windows before the range
    if (!usage_over(vm, query_.start_ns, query_.end_ns, activity.totals)) return std::nullopt;
    if (!report.totals.add(activity.totals).ok()) return std::nullopt;
    report.vms.push_back(std::move(activity));
  }
  std::move(recorded_).merge_into(report.gaps);
  if (!versions_.empty() && !add_cost(report)) return std::nullopt;
  return report;
}

}  // namespace billing::model
