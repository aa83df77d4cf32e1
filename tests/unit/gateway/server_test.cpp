// The gateway over real loopback sockets: routing, codecs, limits, deadlines,
// keep-alive and draining, as a Connect client sees them.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "gateway/connect_codec.hpp"
#include "test_http_client.hpp"
#include "test_server.hpp"

namespace billing::gateway::testing {
namespace {

using namespace std::chrono_literals;
using message = billing::v1::SendMetricsRequest;

message sample() {
  message request;
  request.set_instance_id("metald-7");
  request.mutable_metrics()->set_customer_id("cust-1");
  request.mutable_metrics()->set_cpu_time_nanos(42);
  return request;
}

std::string proto_bytes(const message& m) {
  return m.SerializeAsString();
}

message parse_proto(const std::string& bytes) {
  message m;
  REQUIRE(m.ParseFromString(bytes));
  return m;
}

const header_list proto_headers = {{"Content-Type", "application/proto"},
                                   {"Connect-Protocol-Version", "1"}};
const header_list json_headers = {{"Content-Type", "application/json"},
                                  {"Connect-Protocol-Version", "1"}};

}  // namespace

TEST_CASE("binary and JSON unary calls round-trip on one keep-alive connection") {
  test_server server;
  test_http_client client;
  REQUIRE(client.connect(server.address()));

  auto binary = client.request("POST", echo_path, proto_headers, proto_bytes(sample()));
  REQUIRE(binary);
  CHECK(binary->status == 200);
  CHECK(binary->header("content-type") == "application/proto");
  CHECK(parse_proto(binary->body).metrics().cpu_time_nanos() == 42);

  auto json =
      client.request("POST", echo_path, json_headers,
                     R"({"instanceId":"m","metrics":{"customer_id":"c","cpuTimeNanos":"7"}})");
  REQUIRE(json);
  CHECK(json->status == 200);
  CHECK(json->header("content-type") == "application/json");
  CHECK(json->body.find(R"("cpuTimeNanos":"7")") != std::string::npos);
  CHECK(json->body.find(R"("customerId":"c")") != std::string::npos);
}

TEST_CASE("pipelined requests are answered in order") {
  test_server server;
  test_http_client client;
  REQUIRE(client.connect(server.address()));
  message slow = slow_request(100ms);
  message fast = sample();
  REQUIRE(client.send(make_request("POST", slow_echo_path, proto_headers, proto_bytes(slow)) +
                      make_request("POST", echo_path, proto_headers, proto_bytes(fast))));
  auto first = client.read_response();
  auto second = client.read_response();
  REQUIRE(first);
  REQUIRE(second);
  CHECK(parse_proto(first->body).instance_id() == "slow");
  CHECK(parse_proto(second->body).instance_id() == "metald-7");
}

TEST_CASE("routing errors follow the Connect protocol") {
  test_server server;
  test_http_client client;
  REQUIRE(client.connect(server.address()));

  SUBCASE("unknown procedure: 404 unimplemented") {
    auto reply = client.request("POST", "/billing.v1.Nope/Nope", proto_headers, "");
    REQUIRE(reply);
    CHECK(reply->status == 404);
    CHECK(reply->body.find(R"("code":"unimplemented")") != std::string::npos);
  }
  SUBCASE("GET on a unary procedure: 405 with Allow") {
    auto reply = client.request("GET", echo_path);
    REQUIRE(reply);
    CHECK(reply->status == 405);
    CHECK(reply->header("allow") == "POST");
  }
  SUBCASE("unsupported content type: 415 with Accept-Post") {
    auto reply = client.request("POST", echo_path, {{"Content-Type", "text/plain"}}, "hi");
    REQUIRE(reply);
    CHECK(reply->status == 415);
    CHECK(reply->header("accept-post").find("application/proto") != std::string::npos);
  }
  SUBCASE("wrong Connect-Protocol-Version: 400 invalid_argument") {
    auto reply = client.request(
        "POST", echo_path,
        {{"Content-Type", "application/proto"}, {"Connect-Protocol-Version", "2"}}, "");
    REQUIRE(reply);
    CHECK(reply->status == 400);
    CHECK(reply->body.find(R"("code":"invalid_argument")") != std::string::npos);
  }
  SUBCASE("undecodable body: 400 invalid_argument") {
    auto reply = client.request("POST", echo_path, json_headers, "{not json");
    REQUIRE(reply);
    CHECK(reply->status == 400);
    CHECK(reply->body.find(R"("code":"invalid_argument")") != std::string::npos);
  }
  SUBCASE("GET routes answer GET and HEAD") {
    auto reply = client.request("GET", "/healthz");
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(reply->body == "ok\n");
  }
  // The connection survives every one of these answers.
  auto after = client.request("POST", echo_path, proto_headers, proto_bytes(sample()));
  REQUIRE(after);
  CHECK(after->status == 200);
}

TEST_CASE("handler errors become Connect errors with the mapped HTTP status") {
  test_server server;
  test_http_client client;
  REQUIRE(client.connect(server.address()));
  message request = sample();
  request.mutable_metrics()->set_customer_id("ghost");

  auto failed = client.request("POST", fail_path, proto_headers, proto_bytes(request));
  REQUIRE(failed);
  CHECK(failed->status == 404);
  CHECK(failed->header("content-type") == "application/json");
  CHECK(failed->body == R"({"code":"not_found","message":"no customer ghost"})");

  auto dropped = client.request("POST", drop_path, proto_headers, proto_bytes(request));
  REQUIRE(dropped);
  CHECK(dropped->status == 500);
  CHECK(dropped->body.find(R"("code":"internal")") != std::string::npos);

  auto thrown = client.request("POST", throw_path, proto_headers, proto_bytes(request));
  REQUIRE(thrown);
  CHECK(thrown->status == 500);

  auto twice = client.request("POST", answer_twice_path, proto_headers, proto_bytes(request));
  REQUIRE(twice);
  CHECK(twice->status == 200);  // the first answer wins
  auto next = client.request("POST", echo_path, proto_headers, proto_bytes(request));
  REQUIRE(next);
  CHECK(next->status == 200);
  CHECK(server.server().in_flight() == 0);
}

TEST_CASE("bodies larger than the limit get resource_exhausted and the connection closes") {
  server_options options = test_options();
  options.max_body_bytes = 2048;
  test_server server(options);
  test_http_client client;
  REQUIRE(client.connect(server.address()));
  auto reply = client.request("POST", echo_path, proto_headers, std::string(8192, 'x'));
  REQUIRE(reply);
  CHECK(reply->status == 429);
  CHECK(reply->body.find(R"("code":"resource_exhausted")") != std::string::npos);
  CHECK(reply->body.find("2048") != std::string::npos);
  CHECK(client.closed_by_server());

  SUBCASE("a gzip body that inflates past the limit is refused too") {
    auto bomb = gzip_compress(std::string(1 << 20, '\0'));
    REQUIRE(bomb.ok());
    REQUIRE(bomb.value().size() < 2048);
    test_http_client second;
    REQUIRE(second.connect(server.address()));
    header_list headers = proto_headers;
    headers.emplace_back("Content-Encoding", "gzip");
    auto refused = second.request("POST", echo_path, headers, bomb.value());
    REQUIRE(refused);
    CHECK(refused->status == 429);
  }
}

TEST_CASE("gzip request bodies are inflated and large answers gzipped when accepted") {
  test_server server;
  test_http_client client;
  REQUIRE(client.connect(server.address()));
  auto compressed = gzip_compress(proto_bytes(sample()));
  REQUIRE(compressed.ok());
  header_list headers = proto_headers;
  headers.emplace_back("Content-Encoding", "gzip");
  auto reply = client.request("POST", echo_path, headers, compressed.value());
  REQUIRE(reply);
  CHECK(reply->status == 200);
  CHECK(parse_proto(reply->body).instance_id() == "metald-7");

  header_list accepting = proto_headers;
  accepting.emplace_back("Accept-Encoding", "gzip");
  auto big = client.request("POST", big_path, accepting, "");
  REQUIRE(big);
  CHECK(big->header("content-encoding") == "gzip");
  auto inflated = gunzip_bounded(big->body, 1 << 20);
  REQUIRE(inflated.ok());
  CHECK(parse_proto(inflated.value()).instance_id().size() == 2048 * 7);

  auto plain = client.request("POST", big_path, proto_headers, "");
  REQUIRE(plain);
  CHECK(plain->header("content-encoding").empty());
}

TEST_CASE("Connect-Timeout-Ms bounds the call: deadline_exceeded with HTTP 504") {
  test_server server;
  test_http_client client;
  REQUIRE(client.connect(server.address()));
  header_list headers = proto_headers;
  headers.emplace_back("Connect-Timeout-Ms", "50");
  auto reply = client.request("POST", slow_echo_path, headers, proto_bytes(slow_request(1000ms)));
  REQUIRE(reply);
  CHECK(reply->status == 504);
  CHECK(reply->body.find(R"("code":"deadline_exceeded")") != std::string::npos);

  headers.back().second = "not-a-number";
  auto bad = client.request("POST", echo_path, headers, proto_bytes(sample()));
  REQUIRE(bad);
  CHECK(bad->status == 400);
}

TEST_CASE("handlers see the peer, the codec, headers and the deadline") {
  test_server server;
  test_http_client client;
  REQUIRE(client.connect(server.address()));
  header_list headers = json_headers;
  headers.emplace_back("X-Probe", "hello");
  headers.emplace_back("Connect-Timeout-Ms", "5000");
  auto reply = client.request("POST", context_path, headers, "{}");
  REQUIRE(reply);
  REQUIRE(reply->status == 200);
  CHECK(reply->body.find(R"("vmId":"hello")") != std::string::npos);
  CHECK(reply->body.find(R"("region":"json")") != std::string::npos);
  CHECK(reply->body.find(R"("instanceId":"127.0.0.1:)") != std::string::npos);
}

TEST_CASE("malformed HTTP gets 400 and a closed connection") {
  test_server server;
  test_http_client client;
  REQUIRE(client.connect(server.address()));
  REQUIRE(client.send("THIS IS NOT HTTP\r\n\r\n"));
  auto reply = client.read_response();
  REQUIRE(reply);
  CHECK(reply->status == 400);
  CHECK(client.closed_by_server());
}

TEST_CASE("stop drains calls in flight, then refuses new connections") {
  test_server server;
  test_http_client client;
  REQUIRE(client.connect(server.address()));
  REQUIRE(client.send(
      make_request("POST", slow_echo_path, proto_headers, proto_bytes(slow_request(200ms)))));
  // Let the request reach its handler before stopping.
  for (int i = 0; i < 200 && server.server().in_flight() == 0; ++i)
    std::this_thread::sleep_for(5ms);
  REQUIRE(server.server().in_flight() == 1);
  auto stopped = std::async(std::launch::async, [&] { server.server().stop(5000ms); });
  auto reply = client.read_response();
  REQUIRE(reply);
  CHECK(reply->status == 200);
  CHECK(parse_proto(reply->body).instance_id() == "slow");
  CHECK(stopped.wait_for(5s) == std::future_status::ready);
  test_http_client late;
  CHECK_FALSE(late.connect(server.address()));
}

}  // namespace billing::gateway::testing
