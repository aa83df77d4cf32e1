// Fuzzes the path of one metric from wire bytes to a verdict: protobuf
// decoding, timestamp conversion (overflowing seconds, negative nanos) and
// every validation rule, with the limits the server uses by default. The
// verdict must be reached without undefined behaviour for any input.
#include <cstddef>
#include <cstdint>

#include "billing/v1/billing.pb.h"
#include "gateway/services/convert.hpp"
#include "model/validation.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  billing::v1::BillingMetrics metrics;
  if (!metrics.ParseFromArray(data, static_cast<int>(size))) return 0;
  const billing::model::usage_window window = billing::gateway::to_window(metrics);
  const billing::model::validation_limits limits;
  // A fixed "now" keeps runs reproducible: 2026-11-24T00:00:00Z.
  constexpr int64_t now_ns = int64_t{1'795'478'400} * 1'000'000'000;
  const auto verdict = billing::model::validate_window(window, limits, now_ns);
  if (!verdict) {
    // Accepted windows must satisfy the invariants the ledger relies on.
    if (window.window_start_ns >= window.window_end_ns) __builtin_trap();
    if (window.customer_id.empty() || window.vm_id.empty()) __builtin_trap();
  }
  (void)billing::gateway::to_proto(window);
  return 0;
}
