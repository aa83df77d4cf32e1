// The server span of a call (gateway/call_tracing.hpp): parent-based sampling
// from `traceparent`, and the semantic-convention attributes.
#include <doctest/doctest.h>

#include <map>

#include "gateway/call_tracing.hpp"

using namespace billing;
using namespace billing::gateway;

namespace {

call_context context_with(std::map<std::string, std::string> headers) {
  call_context context;
  context.peer = "127.0.0.1:40000";
  context.headers = std::move(headers);
  return context;
}

std::map<std::string, observability::attribute_value> attributes_of(
    const observability::span_record& span) {
  std::map<std::string, observability::attribute_value> by_key;
  for (const auto& attribute : span.attributes) by_key[attribute.key] = attribute.value;
  return by_key;
}

}  // namespace

TEST_CASE("a sampled traceparent is continued: same trace, the caller's span as parent") {
  auto spans = std::make_shared<observability::tracer>(10, nullptr);
  auto context =
      context_with({{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}});
  start_call_trace(context, spans);
  REQUIRE(context.tracer);
  CHECK(context.span.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(context.span.span_id.size() == 16);
  CHECK(context.span.span_id != "00f067aa0ba902b7");
  CHECK(context.parent_span_id == "00f067aa0ba902b7");
}

TEST_CASE("an unsampled traceparent is not traced; none, or an invalid one, starts a trace") {
  auto spans = std::make_shared<observability::tracer>(10, nullptr);
  auto unsampled =
      context_with({{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}});
  start_call_trace(unsampled, spans);
  CHECK_FALSE(unsampled.tracer);
  CHECK_FALSE(unsampled.span.traced());

  for (auto headers : {std::map<std::string, std::string>{},
                       std::map<std::string, std::string>{{"traceparent", "garbage"}}}) {
    auto context = context_with(headers);
    start_call_trace(context, spans);
    REQUIRE(context.tracer);
    CHECK(context.span.trace_id.size() == 32);
    CHECK(context.parent_span_id.empty());
  }

  auto off = context_with({});
  start_call_trace(off, nullptr);
  CHECK_FALSE(off.span.traced());
  CHECK_FALSE(start_server_span(off, "/billing.v1.X/Y").recording());
}

TEST_CASE("the server span: name, kind, rpc and network attributes, error code") {
  auto spans = std::make_shared<observability::tracer>(10, nullptr);
  auto context =
      context_with({{"host", "billing.example:8443"},
                    {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}});
  start_call_trace(context, spans);
  auto span = start_server_span(context, "/billing.v1.BillingCollectorService/SendMetricsBatch");
  finish_server_span(span, status_code::invalid_argument, "the batch has no metrics");
  auto internal = start_server_span(context, "/billing.v1.BillingQueryService/GetCustomerUsage");
  finish_server_span(internal, status_code::internal, "disk");

  auto recorded = spans->take(10, std::chrono::milliseconds{0});
  REQUIRE(recorded.size() == 2);
  const auto& first = recorded[0];
  CHECK(first.name == "billing.v1.BillingCollectorService/SendMetricsBatch");
  CHECK(first.kind == observability::span_kind::server);
  CHECK(first.parent_span_id == "00f067aa0ba902b7");
  CHECK(first.parent_is_remote);
  auto attributes = attributes_of(first);
  CHECK(std::get<std::string>(attributes.at("rpc.system")) == "connect_rpc");
  CHECK(std::get<std::string>(attributes.at("rpc.service")) ==
        "billing.v1.BillingCollectorService");
  CHECK(std::get<std::string>(attributes.at("rpc.method")) == "SendMetricsBatch");
  CHECK(std::get<std::string>(attributes.at("server.address")) == "billing.example");
  CHECK(std::get<int64_t>(attributes.at("server.port")) == 8443);
  CHECK(std::get<std::string>(attributes.at("network.peer.address")) == "127.0.0.1");
  CHECK(std::get<int64_t>(attributes.at("network.peer.port")) == 40000);
  CHECK(std::get<std::string>(attributes.at("rpc.connect_rpc.error_code")) == "invalid_argument");
  // A client's mistake leaves the server span's status unset; the server's own fault is ERROR.
  CHECK_FALSE(first.error);
  CHECK(recorded[1].error);
  CHECK(recorded[1].status_message == "disk");
}
