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
#include <utility>
#include <vector>

#include "gateway/connect_stream.hpp"
#include "model/status.hpp"
#include "model/trace_parent.hpp"
#include "observability/span.hpp"

namespace billing::gateway {

enum class client_certificates { required, optional };

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
  // The same for server streams. A live-usage stream is meant to stay open,
  // so by default it has no deadline unless the client sends one (0: none).
  std::chrono::milliseconds stream_default_timeout{0};
  std::chrono::milliseconds stream_max_timeout{std::chrono::hours{24 * 365}};
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
  // With a client CA: must every client present a certificate (required), or
  // may it come without one and use a bearer token (optional)? A certificate
  // presented is verified against the CA bundle either way.
  client_certificates tls_client_auth = client_certificates::required;
  // Told (on an io thread) when changed TLS files were reloaded or could not
  // be; the files are checked at every new connection.
  std::function<void(bool failed, const std::string& event)> tls_event_log;
  // Bytes a server stream may hold queued but unwritten (a slow reader)
  // before stream_sink::send answers full.
  uint64_t max_stream_buffer_bytes = uint64_t{1} << 20;
  // Where the calls' spans go (gateway/call_tracing.hpp); null: no tracing.
  std::shared_ptr<observability::tracer> tracer = {};
};

enum class codec { proto, json };

// What a handler knows about the call besides its message.
struct call_context {
  codec wire_codec = codec::proto;
  std::string peer;  // "ip:port"
  std::chrono::steady_clock::time_point deadline;
  std::map<std::string, std::string> headers;  // names lower-cased
  // The verified client certificate's identity (URI SAN, e.g. a SPIFFE ID,
  // else subject CN); "" without TLS or without a client certificate.
  std::string client_identity;
  // Tracing (gateway/call_tracing.hpp): where this call's spans go, null when
  // it is not traced; its server span's ids (handlers parent their spans to
  // it); the caller's span from `traceparent`, "" when the call began a trace.
  std::shared_ptr<observability::tracer> tracer = {};
  model::trace_parent span = {};
  std::string parent_span_id = {};

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

// A type-erased server-streaming route: the decoded (decompressed) request
// message in, the stream's outbound channel to write to.
struct stream_route {
  std::function<void(const call_context&, std::string message,
                     std::shared_ptr<stream_channel> channel)>
      call;
};

// A plain GET endpoint (health, readiness, metrics).
struct http_reply {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Further response headers (caching, validators, security policies).
  std::vector<std::pair<std::string, std::string>> headers = {};
};

// What a GET endpoint under a path prefix (static files) is told.
struct get_request {
  std::string_view path;           // without the query
  std::string_view if_none_match;  // the request's If-None-Match, "" when absent
};
using get_prefix_handler = std::function<http_reply(const get_request&)>;

// Told about every finished unary call: its path, Connect code and the time
// from the decoded request to the answer; and about every ended server
// stream: its path, final code and lifetime. Also gets the caller's W3C
// `traceparent` header ("" when none) and the call's server span ids (empty
// when it is not traced). Called on the answering thread.
using call_observer =
    std::function<void(std::string_view path, status_code code, std::chrono::nanoseconds took,
                       std::string_view traceparent, const model::trace_parent& span)>;

// The call's server span, started now (not recording when the call is not
// traced): name "billing.v1.Service/Method", rpc.*, server.* and network.*
// attributes of the semantic conventions (gateway/call_tracing.cpp).
observability::span_timer start_server_span(const call_context& context, std::string_view path);
// Ends it with the call's Connect code: rpc.connect_rpc.error_code on an
// error; status ERROR only for the codes that are the server's fault
// (unknown, deadline_exceeded, unimplemented, internal, unavailable,
// data_loss), as the conventions ask of server spans.
void finish_server_span(observability::span_timer& span, status_code code,
                        std::string_view message);

// A server-streaming call's outbound side, held by shared_ptr. Thread-safe:
// any thread may call it. Dropping the last reference without finish() ends
// the stream with internal, so a client is never left waiting on a lost sink.
template <class Response>
class stream_sink {
 public:
  using send_result = stream_send_result;

  stream_sink(std::shared_ptr<stream_channel> channel, codec wire_codec)
      : channel_(std::move(channel)), wire_codec_(wire_codec) {}
  ~stream_sink() {
    channel_->finish(status{status_code::internal, "the handler dropped the stream unfinished"});
  }
  stream_sink(const stream_sink&) = delete;
  stream_sink& operator=(const stream_sink&) = delete;

  // Encodes and queues one message; never blocks. `full` when more than
  // server_options::max_stream_buffer_bytes wait unwritten: the message is
  // not queued, keep (or coalesce) it and send again once on_drained fires.
  // `closed` once the stream has ended (finished, client gone, deadline,
  // server stopping).
  send_result send(const Response& message);
  // Ends the stream: the end-of-stream message carries `outcome` ({} for ok).
  // Idempotent: only the first finish counts.
  void finish(status outcome) { channel_->finish(std::move(outcome)); }
  bool closed() const { return channel_->closed(); }
  // Called once when the stream ends for any reason (client disconnect
  // included): on the thread that ended it (the caller of finish(), or an io
  // thread for a disconnect, the deadline or a stop), or at once when it
  // already has. Keep it short: it may run on an io thread.
  void set_on_closed(std::function<void()> on_closed) {
    channel_->set_on_closed(std::move(on_closed));
  }
  // Called, on some thread, each time the queued bytes drop to zero after a `full`.
  void set_on_drained(std::function<void()> on_drained) {
    channel_->set_on_drained(std::move(on_drained));
  }

 private:
  std::shared_ptr<stream_channel> channel_;
  codec wire_codec_;
};

class connect_router {
 public:
  // Set before the server starts; routes added earlier see it too.
  void set_call_observer(call_observer observer) { *observer_ = std::move(observer); }

  // Binds POST `path` (e.g. "/billing.v1.BillingCollectorService/SendMetrics").
  template <class Request, class Response>
  void add_unary(std::string path,
                 std::function<void(const call_context&, Request, responder<Response>)> handler);

  // Binds POST `path` as a server-streaming procedure: the handler gets the
  // one request message and a sink to send any number of responses to,
  // from any thread, until it finishes the stream.
  template <class Request, class Response>
  void add_server_stream(
      std::string path,
      std::function<void(const call_context&, Request, std::shared_ptr<stream_sink<Response>>)>
          handler);

  void add_get(std::string path, std::function<http_reply()> handler);
  // Binds GET and HEAD of every path starting with `prefix` that no other
  // route has (the longest matching prefix wins).
  void add_get_prefix(std::string prefix, get_prefix_handler handler);

  // Every route path the router knows (unary, streaming and GET), for tests and logs.
  const std::map<std::string, unary_route>& unary_routes() const { return unary_; }
  const std::map<std::string, stream_route>& stream_routes() const { return stream_; }
  const std::map<std::string, std::function<http_reply()>>& get_routes() const { return get_; }
  // The handler of the longest prefix of `path`, or null.
  const get_prefix_handler* find_get_prefix(std::string_view path) const;

 private:
  std::map<std::string, unary_route> unary_;
  std::map<std::string, stream_route> stream_;
  std::map<std::string, std::function<http_reply()>> get_;
  std::map<std::string, get_prefix_handler> get_prefix_;
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
                       traceparent = context.header("traceparent"),
                       span = start_server_span(context, path)](
                          result<std::string> answer) mutable {
          const status_code code = answer.ok() ? status_code::ok : answer.error().code();
          const model::trace_parent ids = span.context();
          finish_server_span(span, code,
                             answer.ok() ? std::string_view{} : answer.error().message());
          if (*observer) {
            (*observer)(path, code, std::chrono::steady_clock::now() - started, traceparent, ids);
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

template <class Response>
typename stream_sink<Response>::send_result stream_sink<Response>::send(const Response& message) {
  if (channel_->closed()) return send_result::closed;
  auto encoded = encode_message(wire_codec_, message);
  if (!encoded.ok()) {
    channel_->finish(encoded.error());
    return send_result::closed;
  }
  return channel_->send(std::move(encoded).value());
}

template <class Request, class Response>
void connect_router::add_server_stream(
    std::string path,
    std::function<void(const call_context&, Request, std::shared_ptr<stream_sink<Response>>)>
        handler) {
  std::string route_path = path;
  stream_[std::move(route_path)] =
      stream_route{[handler = std::move(handler), observer = observer_, path = std::move(path)](
                       const call_context& context, std::string message,
                       std::shared_ptr<stream_channel> channel) {
        const auto started = std::chrono::steady_clock::now();
        channel->set_end_observer([observer, path, started,
                                   traceparent = context.header("traceparent"),
                                   span = start_server_span(context, path)](
                                      status_code code) mutable {
          const model::trace_parent ids = span.context();
          finish_server_span(span, code, {});
          if (*observer) {
            (*observer)(path, code, std::chrono::steady_clock::now() - started, traceparent, ids);
          }
        });
        Request request;
        if (status decoded = decode_message(context.wire_codec, message, request); !decoded.ok()) {
          channel->finish(decoded);
          return;
        }
        handler(context, std::move(request),
                std::make_shared<stream_sink<Response>>(std::move(channel), context.wire_codec));
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
  // arrive on open connections while draining get unavailable; open server
  // streams end at once with unavailable (after what they already queued).
  void stop(std::chrono::milliseconds drain);

  // Unary calls currently being handled.
  uint64_t in_flight() const;
  // Server streams open right now (from the request until the end-of-stream
  // is written or the connection is gone).
  uint64_t open_streams() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace billing::gateway
