// The read side's pure rules: what a usage query may ask, how rollup buckets
// become a customer's usage report, and how raw windows become the usage,
// activity spans and gaps of an arbitrary window. No I/O: storage feeds the
// builders, actors run them, the gateway translates the results.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/calendar.hpp"
#include "model/rollup.hpp"
#include "model/status.hpp"
#include "model/usage_totals.hpp"
#include "model/usage_window.hpp"

namespace billing::model {

struct query_limits {
  // Most buckets one GetCustomerUsage may return (744: a month of hours).
  uint32_t max_buckets = 744;
  // Longest GetBillingWindow range (raw windows are scanned).
  int64_t max_window_range_ns = 31 * kNanosPerDay;
  // metald's window cadence: a hole of at least this long between two
  // windows of a VM is a gap; shorter holes are jitter within one span.
  int64_t expected_cadence_ns = 60 * kNanosPerSecond;
};

// ---- GetCustomerUsage ----

struct usage_query {
  std::string customer_id;
  int64_t start_ns = 0;  // inclusive, aligned to grain (UTC)
  int64_t end_ns = 0;    // exclusive, aligned to grain (UTC)
  granularity grain = granularity::hour;
};

// invalid_argument naming the problem: missing customer, unset or unordered
// bounds, bounds not aligned to the granularity, more buckets than allowed.
status check_usage_query(const usage_query& query, const query_limits& limits);

struct usage_bucket {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  usage_totals totals;
};

struct vm_usage {
  std::string vm_id;
  std::string region;
  usage_totals totals;
  int64_t first_seen_ns = 0;  // earliest active instant in the range
  int64_t last_seen_ns = 0;   // latest active instant in the range
};

struct region_usage {
  std::string region;
  usage_totals totals;
};

struct customer_usage {
  std::string customer_id;
  usage_totals totals;
  std::vector<usage_bucket> buckets;  // every bucket of the range, empty ones too
  std::vector<region_usage> regions;  // by region name
  std::vector<vm_usage> vms;          // by (vm_id, region)
};

// Sums rollup buckets (of the query's granularity, inside its range) into a
// report. An unknown customer simply has no buckets: zero usage, not an error.
class customer_usage_builder {
 public:
  explicit customer_usage_builder(const usage_query& query);
  // out_of_range if a sum would overflow.
  status add(const rollup_id& id, const rollup_value& value);
  customer_usage finish() &&;

 private:
  customer_usage report_;
  std::map<int64_t, size_t> bucket_index_;
  // Hash indexes into report_.regions / report_.vms (sorted in finish()):
  // a scan visits each (region, vm) once per bucket.
  std::unordered_map<std::string, size_t> region_index_;
  std::unordered_map<std::string, size_t> vm_index_;  // key: vm_id '\0' region
  std::vector<rollup_value> vm_values_;
  std::string key_buffer_;
};

// ---- GetBillingWindow ----

struct window_query {
  std::string customer_id;
  int64_t start_ns = 0;  // inclusive, any instant
  int64_t end_ns = 0;    // exclusive
  bool interpolate_gauges = false;
};

// invalid_argument for a missing customer, unset/unordered bounds or a range
// longer than limits.max_window_range_ns.
status check_window_query(const window_query& query, const query_limits& limits);

struct active_span {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  friend bool operator==(const active_span&, const active_span&) = default;
};

struct vm_activity {
  std::string vm_id;
  std::string region;
  std::vector<active_span> spans;
  usage_totals totals;
  friend bool operator==(const vm_activity&, const vm_activity&) = default;
};

struct usage_gap {
  std::string vm_id;
  std::string region;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  // Memory byte-seconds estimated across the gap (linear between the memory
  // gauges on either side) when interpolation was asked for; never billed.
  usage_sum interpolated_memory_bytes_seconds = 0;
  bool interpolated = false;
  friend bool operator==(const usage_gap&, const usage_gap&) = default;
};

struct billing_window {
  std::string customer_id;
  usage_totals totals;
  std::vector<vm_activity> vms;  // by (vm_id, region)
  std::vector<usage_gap> gaps;   // by (vm_id, region, start)
  // What the usage costs under the customer's plan (model::usage_cost), as a
  // decimal; empty when no plan prices the customer.
  std::string cost;
  friend bool operator==(const billing_window&, const billing_window&) = default;
};

// A window's bounds and its memory gauge: all that spans and gaps need.
struct window_bounds {
  int64_t window_start_ns = 0;
  int64_t window_end_ns = 0;
  uint64_t memory_bytes_used = 0;
};

// Where one VM was active inside the query's range and where it was silent:
// appends to activity.spans the range's parts covered by `windows` (sorted
// by start, then end), holes shorter than `cadence_ns` bridged, and to `gaps`
// every hole of at least `cadence_ns` between two windows, clipped to the
// range (with the interpolated memory when the query asks for it).
void trace_activity(const std::vector<window_bounds>& windows, const window_query& query,
                    int64_t cadence_ns, vm_activity& activity, std::vector<usage_gap>& gaps);

// Gaps recorded elsewhere (metald's sample holes and NotifyPossibleGap),
// clipped to the range and merged into the gaps found between windows.
class recorded_gaps {
 public:
  recorded_gaps(int64_t from_ns, int64_t to_ns) : from_ns_(from_ns), to_ns_(to_ns) {}
  void add(usage_gap gap);
  // Appends them to `gaps` (in (vm_id, region, start) order) and keeps that order.
  void merge_into(std::vector<usage_gap>& gaps) &&;

 private:
  int64_t from_ns_;
  int64_t to_ns_;
  std::vector<usage_gap> gaps_;
};

// The usage of `window` that falls inside [from_ns, to_ns): the window's hour
// shares (model/rollup) inside the range, with an hour that the range cuts
// divided by exact apportioning. So a range aligned to hours gives exactly
// what the hourly rollups hold. window_count is 1 when the window starts in
// the range; peak is the window's peak when any of it is inside.
usage_totals usage_within(const usage_window& window, int64_t from_ns, int64_t to_ns);

// Collects the raw windows that overlap the query's range (in any order) and
// computes usage, spans and gaps: the reference computation, which apportions
// every window (model/rollup_window does the same from the hourly rollups).
class billing_window_builder {
 public:
  billing_window_builder(window_query query, const query_limits& limits);
  void add(usage_window window);
  // A gap recorded elsewhere (metald's sample holes and NotifyPossibleGap);
  // reported clipped to the range, with the gaps found between windows.
  void add_gap(usage_gap gap);
  result<billing_window> finish() &&;

 private:
  window_query query_;
  recorded_gaps recorded_;
  int64_t cadence_ns_;
  std::map<std::pair<std::string, std::string>, std::vector<usage_window>> by_vm_;
};

// ---- StreamLiveUsage ----

// What a live-usage subscriber receives: first a snapshot (month to date, no
// delta), then one update per acknowledged ingest that stored something.
struct usage_update {
  std::string customer_id;
  bool snapshot = false;
  usage_totals delta;          // what the ingest added (whole windows)
  usage_totals month_to_date;  // this UTC month's totals after the ingest
  uint64_t sequence = 0;       // strictly increasing per customer actor
  int64_t as_of_ns = 0;
  // The month's usage cost under the customer's plan (model/month_cost), a
  // decimal as format_money writes it; empty when no plan prices the customer.
  std::string month_to_date_cost;
};

}  // namespace billing::model
