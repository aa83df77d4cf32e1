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
static_assert(v1::RejectReason_MAX == v1::REJECT_REASON_CONFLICTING_DUPLICATE);

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

}  // namespace billing::gateway
