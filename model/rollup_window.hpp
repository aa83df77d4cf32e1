// GetBillingWindow without apportioning every raw window.
//
// A window's usage inside a range is the sum, over the hours it overlaps, of
// its hour shares (model/rollup) where the range covers the hour whole, and
// of the exactly apportioned part of the share where the range cuts the hour
// (model::usage_within). So the usage over the whole hours of a range is the
// sum of those hours' rollups, which hold exactly these shares, and only the
// windows reaching into an hour that is cut (by the range's ends, or, for the
// cost, by a plan version taking effect) need their values. Spans and gaps
// need only each window's bounds and, for gap interpolation, the memory
// gauges either side: what the windows-family key and one value field give.
//
// The rollups stand in for the raw windows only while they were built from
// exactly the windows stored. Retention drops raw windows and keeps the
// rollups, so each rollup hour is checked against the scanned windows: its
// active nanoseconds and window count must equal what their bounds give
// (every window adds a positive overlap to each hour it touches, so a missing
// window always shows). When anything differs, or a sum overflows, finish()
// answers nullopt and the caller computes the answer from the raw windows
// (billing_window_builder), which stays the reference.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/invoice.hpp"
#include "model/pricing.hpp"
#include "model/rollup.hpp"
#include "model/usage_query.hpp"

namespace billing::model {

class rollup_window_builder {
 public:
  // `versions`: the customer's plan versions, ascending (empty: no cost).
  rollup_window_builder(window_query query, const query_limits& limits,
                        std::vector<plan_version> versions);

  // The range's whole hours, whose usage the hourly rollups give:
  // [rollup_hours_from, rollup_hours_to), empty when from >= to.
  int64_t rollup_hours_from() const { return rollup_from_; }
  int64_t rollup_hours_to() const { return rollup_to_; }

  // Whether a window [start_ns, end_ns) reaches into a cut hour of the range:
  // such windows go to add_window, every other one to add_bounds.
  bool needs_values(int64_t start_ns, int64_t end_ns) const;

  // A scanned window (also one that ends before the range), by its bounds.
  // Cheapest after add_hour, whose counts size the per-VM buffers.
  void add_bounds(std::string_view region, std::string_view vm_id, const window_bounds& bounds);
  // A scanned window with its values.
  void add_window(usage_window window);
  // An hourly rollup bucket starting in [rollup_hours_from, rollup_hours_to).
  void add_hour(const rollup_id& id, const rollup_value& value);
  // As billing_window_builder::add_gap.
  void add_gap(usage_gap gap);

  // The answer billing_window_builder gives for the same windows (cost
  // included), or nullopt when the rollups cannot give it exactly.
  std::optional<billing_window> finish() &&;

 private:
  struct vm_windows {
    std::string vm_id;
    std::string region;
    std::vector<window_bounds> windows;                   // every scanned window
    std::vector<usage_window> valued;                     // those in cut hours
    std::vector<std::pair<int64_t, rollup_value>> hours;  // rollup hours
    uint64_t windows_in_hours = 0;  // as the rollups count them: room to reserve
  };

  vm_windows& vm(std::string_view region, std::string_view vm_id);
  // The VM's usage inside [from_ns, to_ns), a part of the range whose ends
  // are the range's or a version's: whole hours from the rollups, the rest
  // from the valued windows. False if a sum overflows.
  bool usage_over(const vm_windows& vm, int64_t from_ns, int64_t to_ns, usage_totals& sum) const;
  // Whether every rollup hour of the VM holds exactly its scanned windows.
  bool rollups_match(const vm_windows& vm);
  // Adds the cost of the range's usage to `report`; false on overflow.
  bool add_cost(billing_window& report) const;

  window_query query_;
  int64_t cadence_ns_;
  std::vector<plan_version> versions_;
  int64_t rollup_from_;
  int64_t rollup_to_;
  // The parts of the range outside rollup hours, or in an hour a version cuts.
  std::vector<std::pair<int64_t, int64_t>> cut_pieces_;
  std::vector<vm_windows> vms_;
  std::unordered_map<std::string, size_t> vm_index_;  // key: region '\0' vm_id
  std::string key_buffer_;
  size_t last_vm_ = 0;
  recorded_gaps recorded_;
  // Per rollup hour: active nanoseconds and window starts of the scanned
  // windows of one VM (reused across VMs).
  std::vector<std::pair<uint64_t, uint64_t>> tally_;
};

}  // namespace billing::model
