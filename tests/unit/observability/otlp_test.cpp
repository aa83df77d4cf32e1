// OTLP encoding (checked by decoding with the same generated messages) and
// the exporter against a collector that is down (observability/otlp).
#include <doctest/doctest.h>

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <map>

#include "observability/otlp/otlp_encoder.hpp"
#include "observability/otlp/otlp_exporter.hpp"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

using namespace billing;
using namespace billing::observability;
namespace proto = opentelemetry::proto;

namespace {

std::map<std::string, const proto::common::v1::AnyValue*> attributes_of(
    const google::protobuf::RepeatedPtrField<proto::common::v1::KeyValue>& pairs) {
  std::map<std::string, const proto::common::v1::AnyValue*> by_key;
  for (const auto& pair : pairs) by_key[pair.key()] = &pair.value();
  return by_key;
}

// A loopback port nobody listens on (bound, then closed).
uint16_t closed_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor{
      io, boost::asio::ip::tcp::endpoint{boost::asio::ip::address_v4::loopback(), 0}};
  return acceptor.local_endpoint().port();
}

}  // namespace

TEST_CASE("spans are encoded as one ExportTraceServiceRequest with ids as bytes") {
  span_record server;
  server.context = {"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"};
  server.parent_span_id = "b7ad6b7169203331";
  server.parent_is_remote = true;
  server.name = "billing.v1.BillingCollectorService/SendMetricsBatch";
  server.kind = span_kind::server;
  server.start_unix_ns = 1'700'000'000'000'000'000;
  server.end_unix_ns = 1'700'000'000'000'500'000;
  server.attributes = {{"rpc.system", std::string{"connect_rpc"}},
                       {"server.port", int64_t{8080}},
                       {"billing.wal.sync", true}};
  span_record root = server;
  root.context.span_id = "0102030405060708";
  root.parent_span_id.clear();
  root.parent_is_remote = false;
  root.kind = span_kind::internal;
  root.error = true;
  root.status_message = "disk full";
  const std::vector<span_record> spans{server, root};

  const auto resource = otlp::billingd_resource("1.2.3", "node-a");
  proto::collector::trace::v1::ExportTraceServiceRequest request;
  REQUIRE(request.ParseFromString(otlp::encode_export_request(resource, spans)));
  REQUIRE(request.resource_spans_size() == 1);
  const auto& resource_spans = request.resource_spans(0);
  const auto resource_attributes = attributes_of(resource_spans.resource().attributes());
  CHECK(resource_attributes.at("service.name")->string_value() == "billingd");
  CHECK(resource_attributes.at("service.version")->string_value() == "1.2.3");
  CHECK(resource_attributes.at("service.instance.id")->string_value() == "node-a");
  CHECK(resource_attributes.at("telemetry.sdk.language")->string_value() == "cpp");
  REQUIRE(resource_spans.scope_spans_size() == 1);
  CHECK(resource_spans.scope_spans(0).scope().name() == "billingd");
  REQUIRE(resource_spans.scope_spans(0).spans_size() == 2);

  const auto& first = resource_spans.scope_spans(0).spans(0);
  CHECK(first.trace_id() ==
        std::string("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16));
  CHECK(first.span_id() == std::string("\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8));
  CHECK(first.parent_span_id() == std::string("\xb7\xad\x6b\x71\x69\x20\x33\x31", 8));
  CHECK(first.kind() == proto::trace::v1::Span::SPAN_KIND_SERVER);
  CHECK(first.name() == server.name);
  CHECK(first.start_time_unix_nano() == 1'700'000'000'000'000'000u);
  CHECK(first.end_time_unix_nano() == 1'700'000'000'000'500'000u);
  CHECK(first.flags() == 0x301u);  // sampled, parent known to be remote
  CHECK(first.status().code() == proto::trace::v1::Status::STATUS_CODE_UNSET);
  const auto span_attributes = attributes_of(first.attributes());
  CHECK(span_attributes.at("rpc.system")->string_value() == "connect_rpc");
  CHECK(span_attributes.at("server.port")->int_value() == 8080);
  CHECK(span_attributes.at("billing.wal.sync")->bool_value());

  const auto& second = resource_spans.scope_spans(0).spans(1);
  CHECK(second.parent_span_id().empty());
  CHECK(second.kind() == proto::trace::v1::Span::SPAN_KIND_INTERNAL);
  CHECK(second.flags() == 0x101u);
  CHECK(second.status().code() == proto::trace::v1::Status::STATUS_CODE_ERROR);
  CHECK(second.status().message() == "disk full");
}

TEST_CASE("the collector's answer: empty is a full success, partial_success names rejections") {
  auto empty = otlp::decode_export_response("");
  REQUIRE(empty.ok());
  CHECK(empty->rejected_spans == 0);
  proto::collector::trace::v1::ExportTraceServiceResponse response;
  response.mutable_partial_success()->set_rejected_spans(2);
  response.mutable_partial_success()->set_error_message("too old");
  auto partial = otlp::decode_export_response(response.SerializeAsString());
  REQUIRE(partial.ok());
  CHECK(partial->rejected_spans == 2);
  CHECK(partial->error_message == "too old");
  CHECK_FALSE(otlp::decode_export_response("\xff\xff\xff").ok());
}

TEST_CASE("an exporter whose collector is down drops its spans and counts them") {
  std::atomic<uint64_t> exported{0};
  std::atomic<uint64_t> dropped{0};
  auto spans = std::make_shared<tracer>(100, [&](span_outcome outcome, uint64_t n) {
    (outcome == span_outcome::exported ? exported : dropped) += n;
  });
  {
    auto exporter = otlp::otlp_exporter::start(
        {"http://127.0.0.1:" + std::to_string(closed_port()), std::chrono::milliseconds{2000}, 4,
         std::chrono::milliseconds{10}, ""},
        spans, otlp::billingd_resource("0.0.0", "test"));
    REQUIRE(exporter.ok());
    for (int i = 0; i < 10; ++i) {
      span_record span;
      span.context = {new_trace_id(), new_span_id()};
      span.name = "s";
      spans->record(std::move(span));
    }
  }  // stopping drains: every span is accounted for
  CHECK(exported == 0);
  CHECK(dropped == 10);
}

TEST_CASE("an endpoint that is not a URL is refused at start") {
  auto spans = std::make_shared<tracer>(1, nullptr);
  CHECK_FALSE(otlp::otlp_exporter::start({"ftp://collector:4318"}, spans, {}).ok());
}
