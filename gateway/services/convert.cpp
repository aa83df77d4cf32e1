#include "gateway/services/convert.hpp"

#include <limits>

namespace billing::gateway {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// The model mirrors the wire enums number for number; keep it so.
static_assert(static_cast<int>(model::item_status::accepted) == v1::ITEM_STATUS_ACCEPTED);
static_assert(static_cast<int>(model::item_status::duplicate) == v1::ITEM_STATUS_DUPLICATE);
static_assert(static_cast<int>(model::item_status::rejected) == v1::ITEM_STATUS_REJECTED);
static_assert(static_cast<int>(model::reject_reason::conflicting_duplicate) ==
              v1::REJECT_REASON_CONFLICTING_DUPLICATE);
static_assert(static_cast<int>(model::reject_reason::unknown_region) ==
              v1::REJECT_REASON_UNKNOWN_REGION);
static_assert(static_cast<int>(model::reject_reason::total_out_of_range) ==
              v1::REJECT_REASON_TOTAL_OUT_OF_RANGE);
static_assert(v1::RejectReason_MAX == v1::REJECT_REASON_TOTAL_OUT_OF_RANGE);
static_assert(static_cast<int>(model::granularity::hour) == v1::GRANULARITY_HOUR);
static_assert(static_cast<int>(model::granularity::day) == v1::GRANULARITY_DAY);
static_assert(static_cast<int>(model::granularity::month) == v1::GRANULARITY_MONTH);

int64_t optional_unix_ns(bool present, const google::protobuf::Timestamp& ts) {
  return present ? to_unix_ns(ts) : model::kNoTimestamp;
}

}  // namespace

int64_t to_unix_ns(const google::protobuf::Timestamp& ts) {
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / kNanosPerSecond - 1;
  if (ts.nanos() < 0 || ts.nanos() >= kNanosPerSecond) return model::kNoTimestamp;
  if (ts.seconds() > kMaxSeconds || ts.seconds() < -kMaxSeconds) return model::kNoTimestamp;
  return ts.seconds() * kNanosPerSecond + ts.nanos();
}

google::protobuf::Timestamp to_timestamp(int64_t unix_ns) {
  google::protobuf::Timestamp ts;
  int64_t seconds = unix_ns / kNanosPerSecond;
  int64_t nanos = unix_ns % kNanosPerSecond;
  if (nanos < 0) {
    nanos += kNanosPerSecond;
    seconds -= 1;
  }
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(nanos));
  return ts;
}

model::usage_window to_window(const v1::BillingMetrics& m) {
  model::usage_window w;
  w.customer_id = m.customer_id();
  w.region = m.region();
  w.vm_id = m.vm_id();
  w.sampled_at_ns = m.has_timestamp() ? to_unix_ns(m.timestamp()) : 0;
  w.window_start_ns = m.has_window_start() ? to_unix_ns(m.window_start()) : model::kNoTimestamp;
  w.window_end_ns = m.has_window_end() ? to_unix_ns(m.window_end()) : model::kNoTimestamp;
  w.cpu_time_nanos = m.cpu_time_nanos();
  w.cpu_utilization_pct = m.cpu_utilization_pct();
  w.cpu_cores_used = m.cpu_cores_used();
  w.memory_bytes_used = m.memory_bytes_used();
  w.memory_bytes_peak = m.memory_bytes_peak();
  w.memory_bytes_seconds = m.memory_bytes_seconds();
  w.disk_read_bytes = m.disk_read_bytes();
  w.disk_write_bytes = m.disk_write_bytes();
  w.disk_read_ops = m.disk_read_ops();
  w.disk_write_ops = m.disk_write_ops();
  w.network_rx_bytes = m.network_rx_bytes();
  w.network_tx_bytes = m.network_tx_bytes();
  return w;
}

v1::BillingMetrics to_proto(const model::usage_window& w) {
  v1::BillingMetrics m;
  m.set_customer_id(w.customer_id);
  m.set_region(w.region);
  m.set_vm_id(w.vm_id);
  if (w.sampled_at_ns != 0) *m.mutable_timestamp() = to_timestamp(w.sampled_at_ns);
  *m.mutable_window_start() = to_timestamp(w.window_start_ns);
  *m.mutable_window_end() = to_timestamp(w.window_end_ns);
  m.set_cpu_time_nanos(w.cpu_time_nanos);
  m.set_cpu_utilization_pct(w.cpu_utilization_pct);
  m.set_cpu_cores_used(w.cpu_cores_used);
  m.set_memory_bytes_used(w.memory_bytes_used);
  m.set_memory_bytes_peak(w.memory_bytes_peak);
  m.set_memory_bytes_seconds(w.memory_bytes_seconds);
  m.set_disk_read_bytes(w.disk_read_bytes);
  m.set_disk_write_bytes(w.disk_write_bytes);
  m.set_disk_read_ops(w.disk_read_ops);
  m.set_disk_write_ops(w.disk_write_ops);
  m.set_network_rx_bytes(w.network_rx_bytes);
  m.set_network_tx_bytes(w.network_tx_bytes);
  return m;
}

v1::SendMetricsBatchResponse to_batch_response(const model::ingest_report& report) {
  v1::SendMetricsBatchResponse response;
  uint32_t accepted = 0, duplicates = 0, rejected = 0;
  for (const auto& outcome : report.outcomes) {
    switch (outcome.status) {
      case model::item_status::accepted:
        ++accepted;
        continue;
      case model::item_status::duplicate:
        ++duplicates;
        break;
      case model::item_status::rejected:
        ++rejected;
        break;
    }
    auto* item = response.add_results();
    item->set_index(outcome.index);
    item->set_status(static_cast<v1::ItemStatus>(outcome.status));
    item->set_reason(static_cast<v1::RejectReason>(outcome.reason));
    item->set_message(outcome.message);
  }
  response.set_accepted_count(accepted);
  response.set_duplicate_count(duplicates);
  response.set_rejected_count(rejected);
  return response;
}

result<model::usage_query> to_usage_query(const v1::GetCustomerUsageRequest& request) {
  const auto grain = request.granularity();
  if (grain != v1::GRANULARITY_HOUR && grain != v1::GRANULARITY_DAY &&
      grain != v1::GRANULARITY_MONTH) {
    return status{status_code::invalid_argument,
                  "granularity must be GRANULARITY_HOUR, GRANULARITY_DAY or GRANULARITY_MONTH"};
  }
  return model::usage_query{request.customer_id(),
                            optional_unix_ns(request.has_start_time(), request.start_time()),
                            optional_unix_ns(request.has_end_time(), request.end_time()),
                            static_cast<model::granularity>(grain)};
}

model::window_query to_window_query(const v1::GetBillingWindowRequest& request) {
  return {request.customer_id(), optional_unix_ns(request.has_start_time(), request.start_time()),
          optional_unix_ns(request.has_end_time(), request.end_time()),
          request.interpolate_gauges()};
}

v1::UsageTotals to_proto(const model::usage_totals& t) {
  using model::format_usage_sum;
  using model::saturate_u64;
  v1::UsageTotals out;
  out.set_cpu_time_nanos(saturate_u64(t.cpu_time_nanos));
  out.set_memory_bytes_seconds(saturate_u64(t.memory_bytes_seconds));
  out.set_memory_bytes_peak(t.memory_bytes_peak);
  out.set_disk_read_bytes(saturate_u64(t.disk_read_bytes));
  out.set_disk_write_bytes(saturate_u64(t.disk_write_bytes));
  out.set_disk_read_ops(saturate_u64(t.disk_read_ops));
  out.set_disk_write_ops(saturate_u64(t.disk_write_ops));
  out.set_network_rx_bytes(saturate_u64(t.network_rx_bytes));
  out.set_network_tx_bytes(saturate_u64(t.network_tx_bytes));
  out.set_vm_active_nanos(saturate_u64(t.vm_active_nanos));
  out.set_window_count(saturate_u64(t.window_count));
  out.set_cpu_time_nanos_decimal(format_usage_sum(t.cpu_time_nanos));
  out.set_memory_bytes_seconds_decimal(format_usage_sum(t.memory_bytes_seconds));
  out.set_disk_read_bytes_decimal(format_usage_sum(t.disk_read_bytes));
  out.set_disk_write_bytes_decimal(format_usage_sum(t.disk_write_bytes));
  out.set_disk_read_ops_decimal(format_usage_sum(t.disk_read_ops));
  out.set_disk_write_ops_decimal(format_usage_sum(t.disk_write_ops));
  out.set_network_rx_bytes_decimal(format_usage_sum(t.network_rx_bytes));
  out.set_network_tx_bytes_decimal(format_usage_sum(t.network_tx_bytes));
  out.set_vm_active_nanos_decimal(format_usage_sum(t.vm_active_nanos));
  out.set_window_count_decimal(format_usage_sum(t.window_count));
  return out;
}

v1::GetCustomerUsageResponse to_proto(const model::customer_usage& usage) {
  v1::GetCustomerUsageResponse out;
  out.set_customer_id(usage.customer_id);
  *out.mutable_totals() = to_proto(usage.totals);
  for (const auto& bucket : usage.buckets) {
    auto* b = out.add_buckets();
    *b->mutable_bucket_start() = to_timestamp(bucket.start_ns);
    *b->mutable_bucket_end() = to_timestamp(bucket.end_ns);
    *b->mutable_totals() = to_proto(bucket.totals);
  }
  for (const auto& region : usage.regions) {
    auto* r = out.add_regions();
    r->set_region(region.region);
    *r->mutable_totals() = to_proto(region.totals);
  }
  for (const auto& vm : usage.vms) {
    auto* v = out.add_vms();
    v->set_vm_id(vm.vm_id);
    v->set_region(vm.region);
    *v->mutable_totals() = to_proto(vm.totals);
    *v->mutable_first_seen() = to_timestamp(vm.first_seen_ns);
    *v->mutable_last_seen() = to_timestamp(vm.last_seen_ns);
  }
  return out;
}

v1::GetBillingWindowResponse to_proto(const model::billing_window& window) {
  v1::GetBillingWindowResponse out;
  out.set_customer_id(window.customer_id);
  *out.mutable_totals() = to_proto(window.totals);
  out.set_cost(window.cost);
  for (const auto& vm : window.vms) {
    auto* v = out.add_vms();
    v->set_vm_id(vm.vm_id);
    v->set_region(vm.region);
    *v->mutable_totals() = to_proto(vm.totals);
    for (const auto& span : vm.spans) {
      auto* s = v->add_spans();
      *s->mutable_start_time() = to_timestamp(span.start_ns);
      *s->mutable_end_time() = to_timestamp(span.end_ns);
    }
  }
  for (const auto& gap : window.gaps) {
    auto* g = out.add_gaps();
    g->set_vm_id(gap.vm_id);
    g->set_region(gap.region);
    *g->mutable_start_time() = to_timestamp(gap.start_ns);
    *g->mutable_end_time() = to_timestamp(gap.end_ns);
    g->set_interpolated_memory_bytes_seconds(
        model::saturate_u64(gap.interpolated_memory_bytes_seconds));
    if (gap.interpolated) {
      g->set_interpolated_memory_bytes_seconds_decimal(
          model::format_usage_sum(gap.interpolated_memory_bytes_seconds));
    }
    g->set_interpolated(gap.interpolated);
  }
  return out;
}

v1::UsageUpdate to_proto(const model::usage_update& update) {
  v1::UsageUpdate out;
  out.set_customer_id(update.customer_id);
  out.set_snapshot(update.snapshot);
  *out.mutable_delta() = to_proto(update.delta);
  *out.mutable_month_to_date() = to_proto(update.month_to_date);
  out.set_sequence(update.sequence);
  *out.mutable_as_of() = to_timestamp(update.as_of_ns);
  out.set_month_to_date_cost(update.month_to_date_cost);
  return out;
}

}  // namespace billing::gateway
