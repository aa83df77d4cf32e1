#include "gateway/connect_codec.hpp"

#include <doctest/doctest.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <string>
#include <utility>
#include <vector>

#include "billing/v1/billing.pb.h"
#include "gateway/connect_call.hpp"

namespace billing::gateway {
namespace {

// Parses an error body as JSON, so the tests check real JSON and not a string shape.
google::protobuf::Struct parse_json_object(const std::string& json) {
  google::protobuf::Struct object;
  const auto parsed = google::protobuf::util::JsonStringToMessage(json, &object);
  REQUIRE_MESSAGE(parsed.ok(), "not valid JSON: " << json);
  return object;
}

std::string field(const google::protobuf::Struct& object, const std::string& name) {
  const auto found = object.fields().find(name);
  REQUIRE_MESSAGE(found != object.fields().end(), "missing field " << name);
  return found->second.string_value();
}

}  // namespace

TEST_CASE("every Connect code maps to the HTTP status of the protocol table") {
  const std::vector<std::pair<status_code, unsigned>> table = {
      {status_code::canceled, 499},
      {status_code::unknown, 500},
      {status_code::invalid_argument, 400},
      {status_code::deadline_exceeded, 504},
      {status_code::not_found, 404},
      {status_code::already_exists, 409},
      {status_code::permission_denied, 403},
      {status_code::resource_exhausted, 429},
      {status_code::failed_precondition, 400},
      {status_code::aborted, 409},
      {status_code::out_of_range, 400},
      {status_code::unimplemented, 501},
      {status_code::internal, 500},
      {status_code::unavailable, 503},
      {status_code::data_loss, 500},
      {status_code::unauthenticated, 401},
  };
  CHECK(table.size() == 16);
  for (const auto& [code, http_status] : table) {
    CAPTURE(to_string(code));
    CHECK(http_status_for(code) == http_status);
  }
}

TEST_CASE("the error body is a JSON object with code and message") {
  const auto body = parse_json_object(
      error_body_json(status{status_code::not_found, "customer \"c-1\" not found\n"}));
  CHECK(body.fields().size() == 2);
  CHECK(field(body, "code") == "not_found");
  CHECK(field(body, "message") == "customer \"c-1\" not found\n");

  SUBCASE("an empty message is left out") {
    CHECK(error_body_json(status{status_code::internal, ""}) == R"({"code":"internal"})");
  }
  SUBCASE("invalid UTF-8 and control bytes still give valid JSON") {
    const std::string message = std::string("bad \xff\xc3 byte \x01 and \xe2\x82\xac ok");
    const auto parsed = parse_json_object(error_body_json(status{status_code::unknown, message}));
    CHECK(field(parsed, "message") == "bad \xef\xbf\xbd\xef\xbf\xbd byte \x01 and \xe2\x82\xac ok");
  }
  SUBCASE("an error carrying code ok is reported as unknown") {
    CHECK(field(parse_json_object(error_body_json(status{status_code::ok, "x"})), "code") ==
          "unknown");
    CHECK(http_status_for(status_code::ok) == 500);
  }
}

TEST_CASE("JSON requests accept camelCase and snake_case names, int64 as string or number") {
  const std::string camel_case = R"({
    "batchId": "b-1", "instanceId": "metald-7", "region": "eu-west",
    "metrics": [{"vmId": "vm-1", "customerId": "c-1", "cpuTimeNanos": "18446744073709551615",
                 "windowStart": "2024-05-01T10:00:00Z", "memoryBytesSeconds": 42}]})";
  const std::string snake_case = R"({
    "batch_id": "b-1", "instance_id": "metald-7", "region": "eu-west",
    "metrics": [{"vm_id": "vm-1", "customer_id": "c-1", "cpu_time_nanos": 18446744073709551615,
                 "window_start": "2024-05-01T10:00:00Z", "memory_bytes_seconds": "42"}]})";
  for (const std::string& json : {camel_case, snake_case}) {
    billing::v1::SendMetricsBatchRequest request;
    REQUIRE(decode_message(codec::json, json, request).ok());
    CHECK(request.batch_id() == "b-1");
    CHECK(request.instance_id() == "metald-7");
    REQUIRE(request.metrics_size() == 1);
    CHECK(request.metrics(0).vm_id() == "vm-1");
    CHECK(request.metrics(0).customer_id() == "c-1");
    CHECK(request.metrics(0).cpu_time_nanos() == 18446744073709551615ULL);
    CHECK(request.metrics(0).memory_bytes_seconds() == 42);
    CHECK(request.metrics(0).window_start().seconds() == 1714557600);
  }
}

TEST_CASE("unknown JSON fields are ignored") {
  billing::v1::SendMetricsBatchRequest request;
  const status decoded = decode_message(
      codec::json, R"({"batchId":"b-2","addedInV2":{"nested":[1,2]},"alsoNew":"x"})", request);
  CHECK(decoded.ok());
  CHECK(request.batch_id() == "b-2");
}

TEST_CASE("malformed bodies are invalid_argument") {
  billing::v1::SendMetricsBatchRequest request;
  SUBCASE("broken JSON carries protobuf's explanation") {
    const status decoded = decode_message(codec::json, R"({"batchId": )", request);
    CHECK(decoded.code() == status_code::invalid_argument);
    CHECK(decoded.message().starts_with("malformed JSON body: "));
    CHECK(decoded.message().size() > std::string("malformed JSON body: ").size());
  }
  SUBCASE("a JSON type mismatch") {
    CHECK(decode_message(codec::json, R"({"metrics": "not a list"})", request).code() ==
          status_code::invalid_argument);
  }
  SUBCASE("truncated protobuf") {
    billing::v1::SendMetricsBatchRequest original;
    original.set_batch_id("a batch id long enough to cut in half");
    original.add_metrics()->set_vm_id("vm-1");
    std::string wire = original.SerializeAsString();
    wire.resize(wire.size() - 3);
    const status decoded = decode_message(codec::proto, wire, request);
    CHECK(decoded.code() == status_code::invalid_argument);
    CHECK(decoded.message() == "malformed protobuf body");
  }
}

TEST_CASE("encoding uses the proto3 JSON mapping and binary round-trips") {
  billing::v1::BillingMetrics metrics;
  metrics.set_vm_id("vm-1");
  metrics.set_cpu_time_nanos(5);
  const auto json = encode_message(codec::json, metrics);
  REQUIRE(json.ok());
  // lowerCamelCase, 64-bit integers as strings, default values left out.
  CHECK(json.value() == R"({"vmId":"vm-1","cpuTimeNanos":"5"})");

  const auto binary = encode_message(codec::proto, metrics);
  REQUIRE(binary.ok());
  billing::v1::BillingMetrics decoded;
  REQUIRE(decode_message(codec::proto, binary.value(), decoded).ok());
  CHECK(decoded.vm_id() == "vm-1");
  CHECK(decoded.cpu_time_nanos() == 5);
}

TEST_CASE("gzip round trip, including concatenated members") {
  std::string plain;
  for (int i = 0; i < 2000; ++i) plain += "window " + std::to_string(i) + ";";
  const auto compressed = gzip_compress(plain);
  REQUIRE(compressed.ok());
  CHECK(compressed.value().size() < plain.size());
  const auto inflated = gunzip_bounded(compressed.value(), plain.size());
  REQUIRE(inflated.ok());
  CHECK(inflated.value() == plain);

  const auto twice = gunzip_bounded(compressed.value() + compressed.value(), 2 * plain.size());
  REQUIRE(twice.ok());
  CHECK(twice.value() == plain + plain);
}

TEST_CASE("gzip limits and malformed input") {
  SUBCASE("a gzip bomb stops at the limit with resource_exhausted") {
    const std::string zeros(32u << 20, '\0');
    const auto bomb = gzip_compress(zeros);
    REQUIRE(bomb.ok());
    CHECK(bomb.value().size() < 64u << 10);
    const auto inflated = gunzip_bounded(bomb.value(), 1u << 20);
    REQUIRE_FALSE(inflated.ok());
    CHECK(inflated.error().code() == status_code::resource_exhausted);
  }
  SUBCASE("output exactly at the limit is fine, one byte over is not") {
    const std::string plain(1000, 'x');
    const auto compressed = gzip_compress(plain);
    REQUIRE(compressed.ok());
    CHECK(gunzip_bounded(compressed.value(), 1000).ok());
    CHECK(gunzip_bounded(compressed.value(), 999).error().code() ==
          status_code::resource_exhausted);
  }
  SUBCASE("garbage, truncation and trailing bytes are invalid_argument") {
    const auto compressed = gzip_compress(std::string(5000, 'y'));
    REQUIRE(compressed.ok());
    const std::string& good = compressed.value();
    CHECK(gunzip_bounded("not gzip at all", 1 << 20).error().code() ==
          status_code::invalid_argument);
    CHECK(gunzip_bounded(good.substr(0, good.size() / 2), 1 << 20).error().code() ==
          status_code::invalid_argument);
    CHECK(gunzip_bounded(good + "trailing", 1 << 20).error().code() ==
          status_code::invalid_argument);
  }
  SUBCASE("an empty body stays empty") {
    const auto inflated = gunzip_bounded("", 10);
    REQUIRE(inflated.ok());
    CHECK(inflated.value().empty());
  }
}

TEST_CASE("content types, timeouts and accept-encoding") {
  CHECK(codec_for_content_type("application/proto") == codec::proto);
  CHECK(codec_for_content_type("application/json") == codec::json);
  CHECK(codec_for_content_type("Application/JSON; charset=UTF-8") == codec::json);
  CHECK(codec_for_content_type("application/json;charset=utf-8") == codec::json);
  CHECK_FALSE(codec_for_content_type("application/json; charset=latin1"));
  CHECK_FALSE(codec_for_content_type("application/connect+proto"));
  CHECK_FALSE(codec_for_content_type("text/plain"));
  CHECK_FALSE(codec_for_content_type(""));

  CHECK(parse_timeout_ms("1500").value() == std::chrono::milliseconds{1500});
  CHECK(parse_timeout_ms("9999999999").value() == std::chrono::milliseconds{9999999999});
  for (const char* bad : {"", "-1", "1.5", "12345678901", " 10", "10s"}) {
    CAPTURE(bad);
    CHECK(parse_timeout_ms(bad).error().code() == status_code::invalid_argument);
  }

  CHECK(accepts_gzip("gzip"));
  CHECK(accepts_gzip("br, GZIP;q=0.5"));
  CHECK(accepts_gzip("identity , gzip"));
  CHECK_FALSE(accepts_gzip("gzip;q=0"));
  CHECK_FALSE(accepts_gzip("gzip; q=0.000"));
  CHECK_FALSE(accepts_gzip("br, deflate"));
  CHECK_FALSE(accepts_gzip(""));
}

TEST_CASE("planning a unary call applies the Connect headers") {
  server_options options;
  options.default_timeout = std::chrono::milliseconds{30'000};
  options.max_timeout = std::chrono::milliseconds{60'000};
  options.max_body_bytes = 1000;
  const auto now = std::chrono::steady_clock::now();
  const auto plan = [&](std::map<std::string, std::string> headers, std::string body = "") {
    return plan_unary_call(options, codec::json, std::move(headers), std::move(body), "127.0.0.1:9",
                           now);
  };

  const auto plain = plan({{"x-request-id", "r-1"}}, "{}");
  REQUIRE(plain.ok());
  CHECK(plain->context.deadline == now + options.default_timeout);
  CHECK(plain->context.header("x-request-id") == "r-1");
  CHECK(plain->context.header("absent").empty());
  CHECK(plain->context.peer == "127.0.0.1:9");
  CHECK(plain->context.wire_codec == codec::json);
  CHECK(plain->message == "{}");
  CHECK_FALSE(plain->gzip_response_allowed);

  CHECK(plan({{"connect-protocol-version", "1"}}).ok());
  CHECK(plan({{"connect-protocol-version", "2"}}).error().code() == status_code::invalid_argument);
  CHECK(plan({{"connect-timeout-ms", "250"}})->context.deadline ==
        now + std::chrono::milliseconds{250});
  CHECK(plan({{"connect-timeout-ms", "9999999"}})->context.deadline == now + options.max_timeout);
  CHECK(plan({{"connect-timeout-ms", "soon"}}).error().code() == status_code::invalid_argument);
  CHECK(plan({{"connect-timeout-ms", "0"}}).error().code() == status_code::deadline_exceeded);
  CHECK(plan({{"content-encoding", "br"}}).error().code() == status_code::unimplemented);
  CHECK(plan({{"content-encoding", "identity"}}, "abc")->message == "abc");
  CHECK(plan({{"accept-encoding", "gzip"}})->gzip_response_allowed);

  const auto compressed = gzip_compress(R"({"batchId":"b"})");
  REQUIRE(compressed.ok());
  CHECK(plan({{"content-encoding", "gzip"}}, compressed.value())->message == R"({"batchId":"b"})");
  const auto too_big = gzip_compress(std::string(1001, ' '));
  REQUIRE(too_big.ok());
  CHECK(plan({{"content-encoding", "gzip"}}, too_big.value()).error().code() ==
        status_code::resource_exhausted);
}

}  // namespace billing::gateway
