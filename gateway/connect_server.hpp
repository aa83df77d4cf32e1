// A Connect-protocol HTTP/1.1 server on Boost.Beast. Handlers are bound to
// routes with typed protobuf request/response messages; the server does the
// framing, codecs (binary and JSON), compression, limits and error mapping.
// Beast itself is confined to the gateway's .cpp files to keep builds fast.
#pragma once

#include <google/protobuf/message.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "model/status.hpp"

namespace billing::gateway {

struct server_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0 picks a free port
  // Largest request body accepted, compressed or not, and largest body after
  // decompression; larger ones get resource_exhausted.
  uint64_t max_body_bytes = uint64_t{16} << 20;
  uint32_t io_threads = 1;
  // Deadline of a call without Connect-Timeout-Ms; longer client timeouts are capped.
  std::chrono::milliseconds default_timeout{30'000};
  std::chrono::milliseconds max_timeout{300'000};
  // How long a connection may take to send its request headers.
  std::chrono::milliseconds header_timeout{10'000};
  // How long an idle keep-alive connection is kept open.
  std::chrono::milliseconds idle_timeout{60'000};
  // How long reading a request body, or writing a response, may take.
  std::chrono::milliseconds transfer_timeout{60'000};
  // Largest request line plus headers; larger ones get HTTP 431 with a
  // resource_exhausted Connect error, and the connection is closed.
  uint32_t max_header_bytes = 16 * 1024;
  // TLS: serve HTTPS with this PEM certificate (chain) and private key; both
  // empty serves plain HTTP. With a client CA file, clients must present a
  // certificate signed by it (mTLS); otherwise none is asked for.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

enum class codec { proto, json };

// What a handler knows about the call besides its message.
struct call_context {
  codec wire_codec = codec::proto;
  std::string peer;  // "ip:port"
  std::chrono::steady_clock::time_point deadline;
  std::map<std::string, std::string> headers;  // names lower-cased

  // The header's value, or "" when absent.
  const std::string& header(const std::string& lower_case_name) const;
};

// Completes a unary call; callable from any thread, exactly once.
template <class Response>
using responder = std::function<void(result<Response>)>;

// A type-erased unary route as the server sees it: decoded bytes in (already
// decompressed), encoded bytes out.
struct unary_route {
  std::function<void(const call_context&, std::string body,
                     std::function<void(result<std::string>)> done)>
      call;
};

// A plain GET endpoint (health, readiness, metrics).
struct http_reply {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Told about every finished unary call: its path, Connect code, the time
// from the decoded request to the answer, and the caller's W3C `traceparent`
// header ("" when none). Called on the answering thread.
using call_observer =
    std::function<void(std::string_view path, status_code code, std::chrono::nanoseconds took,
                       std::string_view traceparent)>;

class connect_router {
 public:
  // Set before the server starts; routes added earlier see it too.
  void set_call_observer(call_observer observer) { *observer_ = std::move(observer); }

  // Binds POST `path` (e.g. "/billing.v1.BillingCollectorService/SendMetrics").
  template <class Request, class Response>
  void add_unary(std::string path,
                 std::function<void(const call_context&, Request, responder<Response>)> handler);

  void add_get(std::string path, std::function<http_reply()> handler);

  // Every route path the router knows (unary and GET), for tests and logs.
  const std::map<std::string, unary_route>& unary_routes() const { return unary_; }
  const std::map<std::string, std::function<http_reply()>>& get_routes() const { return get_; }

 private:
  std::map<std::string, unary_route> unary_;
  std::map<std::string, std::function<http_reply()>> get_;
  // Shared with every route's closure, so a later set_call_observer reaches them.
  std::shared_ptr<call_observer> observer_ = std::make_shared<call_observer>();
};

// Decodes `body` in `wire_codec` into `message`; invalid_argument on failure.
status decode_message(codec wire_codec, const std::string& body,
                      google::protobuf::Message& message);
// Encodes `message` in `wire_codec` (JSON: proto3 mapping, lowerCamelCase).
result<std::string> encode_message(codec wire_codec, const google::protobuf::Message& message);

template <class Request, class Response>
void connect_router::add_unary(
    std::string path,
    std::function<void(const call_context&, Request, responder<Response>)> handler) {
  std::string route_path = path;
  unary_[std::move(route_path)] =
      unary_route{[handler = std::move(handler), observer = observer_, path = std::move(path)](
                      const call_context& context, std::string body,
                      std::function<void(result<std::string>)> done) {
        const auto started = std::chrono::steady_clock::now();
        auto finish = [done = std::move(done), observer, path, started,
                       traceparent = context.header("traceparent")](result<std::string> answer) {
          if (*observer) {
            (*observer)(path, answer.ok() ? status_code::ok : answer.error().code(),
                        std::chrono::steady_clock::now() - started, traceparent);
          }
          done(std::move(answer));
        };
        Request request;
        if (status decoded = decode_message(context.wire_codec, body, request); !decoded.ok()) {
          finish(decoded);
          return;
        }
        const codec wire_codec = context.wire_codec;
        handler(context, std::move(request),
                [finish = std::move(finish), wire_codec](result<Response> response) mutable {
                  if (!response.ok()) {
                    finish(response.error());
                    return;
                  }
                  finish(encode_message(wire_codec, response.value()));
                });
      }};
}

class connect_server {
 public:
  connect_server(server_options options, connect_router router);
  ~connect_server();  // stops, without draining, if still running
  connect_server(const connect_server&) = delete;
  connect_server& operator=(const connect_server&) = delete;

  // Binds and starts the io threads. Returns the bound "host:port" (the real
  // port when 0 was asked for), or unavailable when binding failed, or
  // invalid_argument when the TLS files cannot be loaded.
  result<std::string> start();

  // Stops accepting, lets in-flight calls finish for up to `drain`, then
  // closes every connection and joins the io threads. Idempotent. Call it
  // from outside the server's threads, never from a handler. Requests that
  // arrive on open connections while draining get unavailable.
  void stop(std::chrono::milliseconds drain);

  // Calls currently being handled.
  uint64_t in_flight() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace billing::gateway
