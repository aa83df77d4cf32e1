// Server streaming over real loopback sockets: the exact bytes a Connect
// client gets, errors in the end-of-stream message, 415s, disconnects,
// backpressure, deadlines and shutdown.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gateway/connect_codec.hpp"
#include "gateway/connect_stream_codec.hpp"
#include "test_http_client.hpp"
#include "test_server.hpp"

namespace billing::gateway::testing {
namespace {

using namespace std::chrono_literals;
using namespace std::literals;
using message = billing::v1::SendMetricsRequest;
using sink_ptr = std::shared_ptr<stream_sink<message>>;

// Sends request.metrics.cpu_time_nanos messages (instance_id "m1", "m2", ...), then ok.
constexpr const char* count_path = "/test.v1.StreamService/Count";
// Sends one message, then fails with not_found.
constexpr const char* fail_after_one_path = "/test.v1.StreamService/FailAfterOne";
// Fails with invalid_argument before sending anything.
constexpr const char* reject_path = "/test.v1.StreamService/Reject";
// Drops its sink without finishing.
constexpr const char* stream_drop_path = "/test.v1.StreamService/Drop";
// Keeps its sink and sends nothing until the stream ends some other way.
constexpr const char* hold_path = "/test.v1.StreamService/Hold";
// From another thread: sends 16 KiB messages until send() stays full for
// 500 ms, then one "after-drain" message once drained, then ok.
constexpr const char* flood_path = "/test.v1.StreamService/Flood";
// Sends one message of 20 KiB of compressible text, then ok.
constexpr const char* stream_big_path = "/test.v1.StreamService/Big";
constexpr const char* unary_echo_path = "/test.v1.StreamService/UnaryEcho";

constexpr uint64_t flood_message_bytes = 16 * 1024;
constexpr int flood_attempt_limit = 8192;  // 128 MiB: far beyond any socket buffer
constexpr int flood_full_retries = 25;
constexpr auto flood_retry_pause = std::chrono::milliseconds{20};

// What the handlers saw, for the tests to wait on.
struct stream_probe {
  std::mutex mutex;
  std::condition_variable changed;
  int started = 0;
  int closed = 0;
  int drained = 0;       // on_drained calls once the flood saw a lasting full
  int early_drains = 0;  // on_drained calls while the writer still kept up
  int flood_queued = 0;
  bool flood_full = false;
  std::vector<sink_ptr> held;
  std::vector<std::pair<std::string, status_code>> observed;

  template <class Change>
  void update(Change change) {
    {
      std::lock_guard lock(mutex);
      change();
    }
    changed.notify_all();
  }
  template <class Predicate>
  bool wait_until(Predicate predicate, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, timeout, predicate);
  }
};

message numbered(int n) {
  message m;
  m.set_instance_id("m" + std::to_string(n));
  return m;
}

connect_router make_stream_router(stream_probe& probe, later_thread& later) {
  connect_router router;
  router.set_call_observer([&probe](std::string_view path, status_code code, auto, auto, auto&) {
    probe.update([&] { probe.observed.emplace_back(std::string(path), code); });
  });
  router.add_server_stream<message, message>(
      count_path, [](const call_context&, message request, sink_ptr sink) {
        for (uint64_t i = 1; i <= request.metrics().cpu_time_nanos(); ++i) {
          REQUIRE(sink->send(numbered(static_cast<int>(i))) == stream_send_result::queued);
        }
        sink->finish(status::ok_status());
      });
  router.add_server_stream<message, message>(
      fail_after_one_path, [](const call_context&, message, sink_ptr sink) {
        sink->send(numbered(1));
        sink->finish(status{status_code::not_found, "no customer ghost"});
      });
  router.add_server_stream<message, message>(
      reject_path, [](const call_context&, message, sink_ptr sink) {
        sink->finish(status{status_code::invalid_argument, "rejected"});
      });
  router.add_server_stream<message, message>(stream_drop_path,
                                             [](const call_context&, message, sink_ptr) {});
  router.add_server_stream<message, message>(
      hold_path, [&probe](const call_context&, message, sink_ptr sink) {
        sink->set_on_closed([&probe] { probe.update([&] { ++probe.closed; }); });
        probe.update([&] {
          ++probe.started;
          probe.held.push_back(std::move(sink));
        });
      });
  router.add_server_stream<message, message>(
      flood_path, [&probe, &later](const call_context&, message, sink_ptr sink) {
        sink->set_on_drained([&probe, weak = std::weak_ptr<stream_sink<message>>(sink)] {
          bool flood_over = false;
          probe.update([&] {
            flood_over = probe.flood_full;
            ++(flood_over ? probe.drained : probe.early_drains);
          });
          auto drained_sink = weak.lock();
          if (!flood_over || !drained_sink) return;
          message last;
          last.set_instance_id("after-drain");
          drained_sink->send(last);
          drained_sink->finish(status::ok_status());
        });
        probe.update([&] { probe.held.push_back(sink); });
        later.run_after(0ms, [&probe, weak = std::weak_ptr<stream_sink<message>>(sink)] {
          message big;
          big.set_instance_id(std::string(flood_message_bytes, 'f'));
          int fulls_in_a_row = 0;
          for (int i = 0; i < flood_attempt_limit; ++i) {
            auto flood_sink = weak.lock();
            if (!flood_sink) return;
            const auto sent = flood_sink->send(big);
            if (sent == stream_send_result::closed) return;
            if (sent == stream_send_result::queued) {
              fulls_in_a_row = 0;
              probe.update([&] { ++probe.flood_queued; });
              continue;
            }
            // Full for a while: the socket is full too, as the client does not read.
            if (++fulls_in_a_row == flood_full_retries) {
              probe.update([&] { probe.flood_full = true; });
              return;
            }
            std::this_thread::sleep_for(flood_retry_pause);
          }
        });
      });
  router.add_server_stream<message, message>(stream_big_path,
                                             [](const call_context&, message, sink_ptr sink) {
                                               message answer;
                                               for (int i = 0; i < 2048; ++i)
                                                 answer.mutable_instance_id()->append("usage-ok ");
                                               sink->send(answer);
                                               sink->finish(status::ok_status());
                                             });
  router.add_unary<message, message>(
      unary_echo_path,
      [](const call_context&, message request, responder<message> respond) { respond(request); });
  return router;
}

server_options stream_test_options() {
  server_options options = test_options();
  options.max_stream_buffer_bytes = 64 * 1024;
  return options;
}

// A server with the streaming test routes; the probe and the thread outlive it.
class stream_test_server {
 public:
  explicit stream_test_server(server_options options = stream_test_options())
      : server_(std::move(options), make_stream_router(probe_, later_)) {
    auto started = server_.start();
    if (!started.ok()) FAIL("cannot start the test server: " << started.error().message());
    address_ = started.value();
  }
  ~stream_test_server() {
    server_.stop(0ms);
    std::lock_guard lock(probe_.mutex);
    probe_.held.clear();
  }

  const std::string& address() const { return address_; }
  connect_server& server() { return server_; }
  stream_probe& probe() { return probe_; }

 private:
  stream_probe probe_;
  later_thread later_;
  connect_server server_;
  std::string address_;
};

// A stream test server and one client connected to it.
struct connected_client {
  stream_test_server server;
  test_http_client client;
  connected_client() { REQUIRE(client.connect(server.address())); }
};

// `base` plus one header.
header_list with_header(header_list base, std::string name, std::string value) {
  base.emplace_back(std::move(name), std::move(value));
  return base;
}

const header_list stream_proto_headers = {{"Content-Type", "application/connect+proto"},
                                          {"Connect-Protocol-Version", "1"}};
const header_list stream_json_headers = {{"Content-Type", "application/connect+json"},
                                         {"Connect-Protocol-Version", "1"}};

std::string request_envelope(uint64_t count) {
  message request;
  request.mutable_metrics()->set_cpu_time_nanos(count);
  return encode_envelope(0, request.SerializeAsString());
}

std::vector<envelope> envelopes_of(std::string_view body) {
  std::vector<envelope> frames;
  while (!body.empty()) {
    auto next = take_envelope(body, 64 << 20);
    REQUIRE_MESSAGE(next.ok(), next.error().message());
    frames.push_back(std::move(next).value());
  }
  return frames;
}

std::string end_of(const test_response& response) {
  const auto frames = envelopes_of(response.body);
  REQUIRE_FALSE(frames.empty());
  REQUIRE(frames.back().flags == envelope_end_stream);
  return frames.back().payload;
}

}  // namespace

TEST_CASE_FIXTURE(
    connected_client,
    "a stream sends its messages, then {} as end-of-stream, as chunks; the connection "
    "stays usable") {
  auto reply = client.request("POST", count_path, stream_proto_headers, request_envelope(3));
  REQUIRE(reply);
  CHECK(reply->status == 200);
  CHECK(reply->header("content-type") == "application/connect+proto");
  CHECK(reply->header("transfer-encoding") == "chunked");
  std::string expected;
  for (int i = 1; i <= 3; ++i) expected += encode_envelope(0, numbered(i).SerializeAsString());
  expected += "\x02\x00\x00\x00\x02{}"s;
  CHECK(reply->body == expected);
  // One chunk per envelope, then the last chunk.
  const std::vector<uint64_t> chunks = {9, 9, 9, 7, 0};
  CHECK(reply->chunk_sizes == chunks);

  // JSON on the same keep-alive connection.
  auto json = client.request("POST", count_path, stream_json_headers,
                             encode_envelope(0, R"({"metrics":{"cpuTimeNanos":"2"}})"));
  REQUIRE(json);
  CHECK(json->header("content-type") == "application/connect+json");
  const auto frames = envelopes_of(json->body);
  REQUIRE(frames.size() == 3);
  CHECK(frames[0].flags == 0);
  CHECK(frames[0].payload == R"({"instanceId":"m1"})");
  CHECK(frames[1].payload == R"({"instanceId":"m2"})");
  CHECK(frames[2].flags == envelope_end_stream);
  CHECK(frames[2].payload == "{}");

  auto unary = client.request("POST", unary_echo_path, {{"Content-Type", "application/proto"}},
                              numbered(7).SerializeAsString());
  REQUIRE(unary);
  CHECK(unary->status == 200);
  CHECK(server.probe().wait_until([&] { return server.probe().observed.size() == 3; }));
  CHECK(server.probe().observed[0] == std::pair{std::string(count_path), status_code::ok});
  CHECK(server.server().open_streams() == 0);
}

TEST_CASE_FIXTURE(connected_client,
                  "errors end the stream in the end-of-stream message of a 200 response") {
  SUBCASE("after a message") {
    auto reply =
        client.request("POST", fail_after_one_path, stream_proto_headers, request_envelope(0));
    REQUIRE(reply);
    CHECK(reply->status == 200);
    const auto frames = envelopes_of(reply->body);
    REQUIRE(frames.size() == 2);
    CHECK(frames[0].payload == numbered(1).SerializeAsString());
    CHECK(frames[1].flags == envelope_end_stream);
    CHECK(frames[1].payload == R"({"error":{"code":"not_found","message":"no customer ghost"}})");
    CHECK(server.probe().wait_until([&] { return !server.probe().observed.empty(); }));
    CHECK(server.probe().observed[0].second == status_code::not_found);
  }
  SUBCASE("before any message") {
    auto reply = client.request("POST", reject_path, stream_proto_headers, request_envelope(0));
    REQUIRE(reply);
    CHECK(reply->status == 200);
    CHECK(reply->body ==
          encode_envelope(envelope_end_stream,
                          R"({"error":{"code":"invalid_argument","message":"rejected"}})"));
  }
  SUBCASE("a dropped sink") {
    auto reply =
        client.request("POST", stream_drop_path, stream_proto_headers, request_envelope(0));
    REQUIRE(reply);
    CHECK(end_of(*reply).find(R"("code":"internal")") != std::string::npos);
  }
  SUBCASE("bad envelopes and undecodable messages") {
    for (const std::string& body :
         {"\x00\x00\x00"s, "\x00\x00\x00\x00\x09short"s, request_envelope(1) + "extra",
          encode_envelope(envelope_compressed, "not gzip"), encode_envelope(0, "\xff\xff")}) {
      auto reply = client.request("POST", count_path, stream_proto_headers, body);
      REQUIRE(reply);
      CHECK(reply->status == 200);
      CHECK(reply->header("content-type") == "application/connect+proto");
      CHECK(envelopes_of(reply->body).size() == 1);
      CHECK(end_of(*reply).find(R"("code":"invalid_argument")") != std::string::npos);
    }
  }
  SUBCASE("a gzip-compressed request envelope is inflated") {
    const header_list headers =
        with_header(stream_proto_headers, "Connect-Content-Encoding", "gzip");
    message request;
    request.mutable_metrics()->set_cpu_time_nanos(1);
    auto compressed = gzip_compress(request.SerializeAsString());
    REQUIRE(compressed.ok());
    auto reply = client.request("POST", count_path, headers,
                                encode_envelope(envelope_compressed, compressed.value()));
    REQUIRE(reply);
    CHECK(envelopes_of(reply->body).size() == 2);
    CHECK(end_of(*reply) == "{}");
  }
  // The connection survives every one of these.
  auto after = client.request("POST", count_path, stream_proto_headers, request_envelope(1));
  REQUIRE(after);
  CHECK(end_of(*after) == "{}");
}

TEST_CASE_FIXTURE(connected_client,
                  "large stream messages are gzipped when the client accepts gzip") {
  const header_list headers = with_header(stream_proto_headers, "Connect-Accept-Encoding", "gzip");
  auto reply = client.request("POST", stream_big_path, headers, request_envelope(0));
  REQUIRE(reply);
  CHECK(reply->header("connect-content-encoding") == "gzip");
  const auto frames = envelopes_of(reply->body);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].flags == envelope_compressed);
  message decoded;
  REQUIRE(decoded.ParseFromString(gunzip_bounded(frames[0].payload, 1 << 20).value()));
  CHECK(decoded.instance_id().size() == 2048 * 9);
  CHECK(frames[1].payload == "{}");  // the end-of-stream message is never compressed
}

TEST_CASE_FIXTURE(connected_client,
                  "content types that do not match the procedure's kind get 415") {
  for (const char* unary_type : {"application/proto", "application/json", "text/plain"}) {
    auto reply =
        client.request("POST", count_path, {{"Content-Type", unary_type}}, request_envelope(1));
    REQUIRE(reply);
    CHECK(reply->status == 415);
    CHECK(reply->header("accept-post") == "application/connect+proto, application/connect+json");
  }
  auto on_unary =
      client.request("POST", unary_echo_path, stream_proto_headers, request_envelope(1));
  REQUIRE(on_unary);
  CHECK(on_unary->status == 415);
  auto get = client.request("GET", count_path);
  REQUIRE(get);
  CHECK(get->status == 405);
}

TEST_CASE_FIXTURE(connected_client, "HTTP/1.0 cannot stream (no chunked encoding): 505") {
  const std::string body = request_envelope(1);
  REQUIRE(client.send(std::string("POST ") + count_path +
                      " HTTP/1.0\r\nContent-Type: application/connect+proto\r\n"
                      "Content-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body));
  auto reply = client.read_response();
  REQUIRE(reply);
  CHECK(reply->status == 505);
  CHECK(reply->body.find(R"("code":"unimplemented")") != std::string::npos);
}

TEST_CASE("a client that disconnects ends its idle stream: on_closed fires, nothing is kept") {
  stream_test_server server;
  auto& probe = server.probe();
  {
    test_http_client client;
    REQUIRE(client.connect(server.address()));
    REQUIRE(
        client.send(make_request("POST", hold_path, stream_proto_headers, request_envelope(0))));
    REQUIRE(probe.wait_until([&] { return probe.started == 1; }));
    CHECK(server.server().open_streams() == 1);
    client.close();
  }
  CHECK(probe.wait_until([&] { return probe.closed == 1; }));
  CHECK(probe.wait_until([&] { return !probe.observed.empty(); }));
  CHECK(probe.observed[0] == std::pair{std::string(hold_path), status_code::canceled});
  std::lock_guard lock(probe.mutex);
  REQUIRE(probe.held.size() == 1);
  CHECK(probe.held[0]->closed());
  CHECK(probe.held[0]->send(numbered(1)) == stream_send_result::closed);
  CHECK(server.server().open_streams() == 0);
}

TEST_CASE(
    "backpressure: send answers full while the client does not read, on_drained once it "
    "does") {
  stream_test_server server;
  auto& probe = server.probe();
  test_http_client client(10s);
  REQUIRE(client.connect(server.address()));
  REQUIRE(client.send(make_request("POST", flood_path, stream_proto_headers, request_envelope(0))));
  REQUIRE(probe.wait_until([&] { return probe.flood_full; }, 30s));
  {
    std::lock_guard lock(probe.mutex);
    CHECK(probe.drained == 0);
    // Far more than the 64 KiB stream buffer went out: the socket took it until it was full.
    CHECK(probe.flood_queued * flood_message_bytes >
          4 * stream_test_options().max_stream_buffer_bytes);
  }

  auto reply = client.read_response();
  REQUIRE(reply);
  const auto frames = envelopes_of(reply->body);
  std::lock_guard lock(probe.mutex);
  CHECK(probe.drained == 1);
  REQUIRE(frames.size() == static_cast<size_t>(probe.flood_queued) + 2);
  message last;
  REQUIRE(last.ParseFromString(frames[frames.size() - 2].payload));
  CHECK(last.instance_id() == "after-drain");
  CHECK(frames.back().payload == "{}");
}

TEST_CASE_FIXTURE(connected_client,
                  "Connect-Timeout-Ms ends an open stream with deadline_exceeded") {
  const header_list headers = with_header(stream_json_headers, "Connect-Timeout-Ms", "100");
  const auto started = std::chrono::steady_clock::now();
  auto reply = client.request("POST", hold_path, headers, encode_envelope(0, "{}"));
  REQUIRE(reply);
  CHECK(std::chrono::steady_clock::now() - started >= 100ms);
  CHECK(reply->status == 200);
  CHECK(end_of(*reply) ==
        R"({"error":{"code":"deadline_exceeded","message":"the stream reached its deadline"}})");
  CHECK(server.probe().wait_until([&] { return server.probe().closed == 1; }));
}

TEST_CASE("stop ends open streams with unavailable and does not wait for their deadline") {
  stream_test_server server;
  auto& probe = server.probe();
  test_http_client client;
  REQUIRE(client.connect(server.address()));
  REQUIRE(client.send(make_request("POST", hold_path, stream_proto_headers, request_envelope(0))));
  REQUIRE(probe.wait_until([&] { return probe.started == 1; }));

  const auto stopping = std::chrono::steady_clock::now();
  auto stopped = std::async(std::launch::async, [&] { server.server().stop(10s); });
  auto reply = client.read_response();
  REQUIRE(reply);
  CHECK(end_of(*reply) ==
        R"({"error":{"code":"unavailable","message":"the server is shutting down"}})");
  REQUIRE(stopped.wait_for(5s) == std::future_status::ready);
  CHECK(std::chrono::steady_clock::now() - stopping < 5s);
  CHECK(probe.closed == 1);
  CHECK(client.closed_by_server());
  CHECK(server.server().open_streams() == 0);
}

}  // namespace billing::gateway::testing
