// Translation between the wire messages (billing.v1) and the model types the
// actors exchange.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include "billing/v1/billing.pb.h"
#include "model/ingest.hpp"
#include "model/status.hpp"
#include "model/usage_query.hpp"
#include "model/usage_window.hpp"

namespace billing::gateway {

// Unix nanoseconds of `ts`, or model::kNoTimestamp when it cannot be
// represented in int64 nanoseconds or its nanos field is out of range.
int64_t to_unix_ns(const google::protobuf::Timestamp& ts);
google::protobuf::Timestamp to_timestamp(int64_t unix_ns);

// Absent window bounds become kNoTimestamp (validation rejects them); an
// absent sample timestamp becomes 0 (it is optional).
model::usage_window to_window(const v1::BillingMetrics& metrics);
v1::BillingMetrics to_proto(const model::usage_window& window);

v1::SendMetricsBatchResponse to_batch_response(const model::ingest_report& report);

// Query requests; invalid_argument for an unspecified granularity. Range
// checks are the model's (check_usage_query, check_window_query).
result<model::usage_query> to_usage_query(const v1::GetCustomerUsageRequest& request);
model::window_query to_window_query(const v1::GetBillingWindowRequest& request);

v1::UsageTotals to_proto(const model::usage_totals& totals);
v1::GetCustomerUsageResponse to_proto(const model::customer_usage& usage);
v1::GetBillingWindowResponse to_proto(const model::billing_window& window);
v1::UsageUpdate to_proto(const model::usage_update& update);

}  // namespace billing::gateway
