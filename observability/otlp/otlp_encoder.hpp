// OTLP/HTTP protobuf encoding of finished spans: one ExportTraceServiceRequest
// per batch, with billingd's resource and instrumentation scope, from the
// opentelemetry-proto subset in proto/ (compiled at build time).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/status.hpp"
#include "observability/span.hpp"

namespace billing::observability::otlp {

// What every exported span shares: the resource (service.name and so on)
// and the instrumentation scope.
struct otlp_resource {
  std::vector<span_attribute> attributes;
  std::string scope_name;
  std::string scope_version;
};

// The resource attributes of the semantic conventions: service.name,
// service.version, service.instance.id and telemetry.sdk.{name,language,version}.
otlp_resource billingd_resource(std::string_view version, std::string_view instance_id);

// The serialized ExportTraceServiceRequest of `spans`, all under `resource`.
std::string encode_export_request(const otlp_resource& resource,
                                  std::span<const span_record> spans);

// What the collector said about an accepted export (partial_success).
struct export_answer {
  int64_t rejected_spans = 0;
  std::string error_message;
};
// Decodes an ExportTraceServiceResponse (an empty body is a full success);
// invalid_argument when it does not parse.
result<export_answer> decode_export_response(std::string_view body);

}  // namespace billing::observability::otlp
