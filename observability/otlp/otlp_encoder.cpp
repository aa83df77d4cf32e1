#include "observability/otlp/otlp_encoder.hpp"

#include <type_traits>
#include <utility>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace billing::observability::otlp {
namespace {

namespace common = opentelemetry::proto::common::v1;
namespace trace = opentelemetry::proto::trace::v1;
namespace collector = opentelemetry::proto::collector::trace::v1;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// OTLP carries ids as raw bytes; ours are hex. Anything not hex (never made
// here) becomes empty, which a receiver treats as an invalid id.
std::string id_bytes(std::string_view hex) {
  std::string bytes;
  if (hex.size() % 2 != 0) return bytes;
  bytes.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int high = hex_digit(hex[i]);
    const int low = hex_digit(hex[i + 1]);
    if (high < 0 || low < 0) return {};
    bytes.push_back(static_cast<char>(high * 16 + low));
  }
  return bytes;
}

void add_attributes(const std::vector<span_attribute>& attributes,
                    google::protobuf::RepeatedPtrField<common::KeyValue>& out) {
  for (const auto& attribute : attributes) {
    auto* pair = out.Add();
    pair->set_key(attribute.key);
    auto* value = pair->mutable_value();
    std::visit(
        [value](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            value->set_string_value(v);
          } else if constexpr (std::is_same_v<T, bool>) {
            value->set_bool_value(v);
          } else {
            value->set_int_value(v);
          }
        },
        attribute.value);
  }
}

// SpanFlags: W3C trace flags in bits 0-7 (every exported span is sampled),
// bit 8 says bit 9 (parent is remote) is meaningful.
uint32_t span_flags(const span_record& span) {
  constexpr uint32_t sampled = 0x01;
  constexpr uint32_t has_is_remote = 0x100;
  constexpr uint32_t is_remote = 0x200;
  return sampled | has_is_remote | (span.parent_is_remote ? is_remote : 0);
}

}  // namespace

otlp_resource billingd_resource(std::string_view version, std::string_view instance_id) {
  otlp_resource resource;
  resource.attributes = {
      {"service.name", std::string{"billingd"}},
      {"service.version", std::string{version}},
      {"service.instance.id", std::string{instance_id}},
      // Not the OpenTelemetry SDK: billingd's own exporter (README "Traces").
      {"telemetry.sdk.name", std::string{"billingd"}},
      {"telemetry.sdk.language", std::string{"cpp"}},
      {"telemetry.sdk.version", std::string{version}},
  };
  resource.scope_name = "billingd";
  resource.scope_version = std::string{version};
  return resource;
}

std::string encode_export_request(const otlp_resource& resource,
                                  std::span<const span_record> spans) {
  collector::ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  add_attributes(resource.attributes, *resource_spans->mutable_resource()->mutable_attributes());
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name(resource.scope_name);
  scope_spans->mutable_scope()->set_version(resource.scope_version);
  for (const auto& span : spans) {
    auto* out = scope_spans->add_spans();
    out->set_trace_id(id_bytes(span.context.trace_id));
    out->set_span_id(id_bytes(span.context.span_id));
    if (!span.parent_span_id.empty()) out->set_parent_span_id(id_bytes(span.parent_span_id));
    out->set_flags(span_flags(span));
    out->set_name(span.name);
    out->set_kind(span.kind == span_kind::server ? trace::Span::SPAN_KIND_SERVER
                                                 : trace::Span::SPAN_KIND_INTERNAL);
    out->set_start_time_unix_nano(static_cast<uint64_t>(span.start_unix_ns));
    out->set_end_time_unix_nano(static_cast<uint64_t>(span.end_unix_ns));
    add_attributes(span.attributes, *out->mutable_attributes());
    if (span.error) {
      out->mutable_status()->set_code(trace::Status::STATUS_CODE_ERROR);
      out->mutable_status()->set_message(span.status_message);
    }
  }
  return request.SerializeAsString();
}

result<export_answer> decode_export_response(std::string_view body) {
  collector::ExportTraceServiceResponse response;
  if (!response.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return status{status_code::invalid_argument,
                  "the collector's answer is not an ExportTraceServiceResponse"};
  }
  return export_answer{response.partial_success().rejected_spans(),
                       response.partial_success().error_message()};
}

}  // namespace billing::observability::otlp
