#include "gateway/http_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <exception>

#include "gateway/connect_codec.hpp"
#include "gateway/http_fields.hpp"
#include "gateway/tls_material.hpp"

namespace billing::gateway {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// After a final answer we stop sending but keep reading (and discarding) for
// a moment: closing a socket with unread input makes the kernel send RST,
// which can destroy the answer before the client reads it (e.g. a 429 for a
// body the client is still uploading).
constexpr std::chrono::milliseconds linger_time{1000};

// Responses this large or larger are gzipped when the client accepts gzip;
// compressing smaller ones costs more than it saves.
constexpr size_t min_gzip_response_bytes = 1024;

std::string endpoint_text(const tcp::endpoint& endpoint) {
  std::string host = endpoint.address().to_string();
  if (endpoint.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

std::string peer_of(const tcp::socket& socket) {
  beast::error_code ec;
  const tcp::endpoint endpoint = socket.remote_endpoint(ec);
  return ec ? std::string{} : endpoint_text(endpoint);
}

status connection_closed() {
  return status{status_code::canceled, "the connection closed before the stream ended"};
}

bool is_http_parse_error(beast::error_code ec) {
  return ec.category() == beast::error_code(http::error::bad_target).category();
}

// Receives a handler's answer on whatever thread the handler uses and posts
// it to the session. Shared by every copy of the responder: the first answer
// wins, later ones are ignored, and a responder dropped without answering
// answers internal so the client is not left waiting for its deadline.
class call_completion {
 public:
  call_completion(std::shared_ptr<server_state> state, std::weak_ptr<http_session> session,
                  uint64_t call_id)
      : state_(std::move(state)), session_(std::move(session)), call_id_(call_id) {
    ++state_->in_flight;
  }
  ~call_completion() {
    if (completed_.load()) return;
    try {
      complete(status{status_code::internal, "the handler dropped the call without answering"});
    } catch (...) {
      // Out of memory while reporting: the call's deadline will answer it.
    }
  }
  call_completion(const call_completion&) = delete;
  call_completion& operator=(const call_completion&) = delete;

  void complete(result<std::string> answer) {
    if (completed_.exchange(true)) return;
    --state_->in_flight;
    std::lock_guard lock(state_->completion_mutex);
    if (!state_->completions_open) return;  // the server has stopped
    if (auto session = session_.lock()) {
      http_session::post_completion(std::move(session), call_id_, std::move(answer));
    }
  }

 private:
  std::shared_ptr<server_state> state_;
  std::weak_ptr<http_session> session_;
  const uint64_t call_id_;
  std::atomic<bool> completed_{false};
};

}  // namespace

http_session::http_session(tcp::socket socket, std::shared_ptr<server_state> state,
                           std::shared_ptr<net::ssl::context> tls)
    : tls_(std::move(tls)),
      stream_(std::move(socket), tls_.get()),
      state_(std::move(state)),
      peer_(peer_of(stream_.socket())),
      call_deadline_(stream_.get_executor()) {}

http_session::~http_session() {
  if (registered_) state_->remove_session(registry_id_);
  if (stream_exchange_) stream_exchange_->channel->abort(connection_closed());
}

void http_session::start() {
  registry_id_ = state_->add_session(weak_from_this());
  registered_ = true;
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->handshake(); });
}

// TLS: the handshake must finish within the header timeout, like the request
// headers that follow it.
void http_session::handshake() {
  if (!stream_.is_tls()) {
    read_header();
    return;
  }
  stream_.expires_after(state_->options.header_timeout);
  stream_.tls().async_handshake(
      net::ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
        if (self->closed_) return;
        if (ec) {
          self->close();  // not TLS, or a certificate refused
          return;
        }
        self->client_identity_ = verified_client_identity(self->stream_.tls().native_handle());
        self->read_header();
      });
}

void http_session::request_drain() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    if (self->phase_ == phase::idle) {
      self->close();
    } else if (self->phase_ == phase::streaming && self->stream_exchange_) {
      // A stream would hold the drain until its deadline: end it now.
      self->close_after_write_ = true;
      self->stream_exchange_->channel->finish(
          status{status_code::unavailable, "the server is shutting down"});
      self->pump_stream();
    }
  });
}

void http_session::request_close() {
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
}

void http_session::post_completion(std::shared_ptr<http_session> self, uint64_t call_id,
                                   result<std::string> answer) {
  auto executor = self->stream_.get_executor();
  net::post(executor, [self = std::move(self), call_id, answer = std::move(answer)]() mutable {
    self->on_call_answered(call_id, std::move(answer));
  });
}

// --- reading ---

void http_session::read_header() {
  if (closed_) return;
  phase_ = phase::reading;
  parser_.emplace();
  parser_->header_limit(state_->options.max_header_bytes);
  parser_->body_limit(state_->options.max_body_bytes);
  stream_.expires_after(state_->options.header_timeout);
  http::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

void http_session::on_header(beast::error_code ec) {
  if (closed_) return;
  if (ec) {
    on_read_error(ec);
    return;
  }
  const auto& request = parser_->get();
  if (beast::iequals(request[http::field::expect], "100-continue") && !parser_->is_done()) {
    // curl asks before uploading large bodies and otherwise stalls a second.
    auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
    stream_.expires_after(state_->options.transfer_timeout);
    http::async_write(stream_, *interim,
                      [self = shared_from_this(), interim](beast::error_code write_ec, size_t) {
                        if (self->closed_) return;
                        if (write_ec) {
                          self->close();
                          return;
                        }
                        self->read_body();
                      });
    return;
  }
  read_body();
}

void http_session::read_body() {
  stream_.expires_after(state_->options.transfer_timeout);
  http::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
}

void http_session::on_body(beast::error_code ec) {
  if (closed_) return;
  if (ec) {
    on_read_error(ec);
    return;
  }
  handle_request(parser_->release());
}

void http_session::wait_for_next_request() {
  if (state_->draining) {
    close();
    return;
  }
  if (buffer_.size() > 0) {  // a pipelined request is already here
    read_header();
    return;
  }
  phase_ = phase::idle;
  stream_.expires_after(state_->options.idle_timeout);
  stream_.async_read_some(buffer_.prepare(4096),
                          [self = shared_from_this()](beast::error_code ec, size_t received) {
                            if (self->closed_) return;
                            if (ec) {
                              self->close();
                              return;
                            }
                            self->buffer_.commit(received);
                            self->read_header();
                          });
}

void http_session::on_read_error(beast::error_code ec) {
  const uint64_t body_limit = state_->options.max_body_bytes;
  if (ec == http::error::body_limit) {
    reply_error_and_close(status{status_code::resource_exhausted,
                                 "request body exceeds " + std::to_string(body_limit) + " bytes"},
                          http_status_for(status_code::resource_exhausted));
  } else if (ec == http::error::header_limit) {
    reply_error_and_close(status{status_code::resource_exhausted,
                                 "request headers exceed " +
                                     std::to_string(state_->options.max_header_bytes) + " bytes"},
                          431);
  } else if (is_http_parse_error(ec) && ec != http::error::end_of_stream &&
             ec != http::error::partial_message) {
    reply_error_and_close(
        status{status_code::invalid_argument, "malformed HTTP request: " + ec.message()}, 400);
  } else {
    // Timeout, end of stream or a dead socket: nobody to answer.
    close();
  }
}

// --- routing ---

void http_session::handle_request(request_type request) {
  exchange_ = exchange{};
  exchange_.http_version = request.version();
  exchange_.keep_alive = request.keep_alive();
  exchange_.head = request.method() == http::verb::head;
  const std::string_view target = to_std(request.target());
  const std::string path(target.substr(0, target.find('?')));

  const auto& unary_routes = state_->router.unary_routes();
  const auto unary = unary_routes.find(path);
  const auto& stream_routes = state_->router.stream_routes();
  const auto stream = stream_routes.find(path);
  if (unary != unary_routes.end() || stream != stream_routes.end()) {
    if (request.method() != http::verb::post) {
      reply_error(status{status_code::unimplemented, path + " accepts only POST"}, 405,
                  {{"Allow", "POST"}});
    } else if (unary != unary_routes.end()) {
      handle_unary(std::move(request), unary->second);
    } else {
      handle_stream(std::move(request), stream->second);
    }
    return;
  }
  if (const auto get = state_->router.get_routes().find(path);
      get != state_->router.get_routes().end()) {
    handle_get(request, path, get->second);
    return;
  }
  if (const get_prefix_handler* under = state_->router.find_get_prefix(path)) {
    const std::string if_none_match(to_std(request[http::field::if_none_match]));
    handle_get(request, path, [&] { return (*under)({path, if_none_match}); });
    return;
  }
  reply_error(status{status_code::unimplemented, "no procedure at " + path}, 404);
}

void http_session::handle_get(const request_type& request, const std::string& path,
                              const std::function<http_reply()>& produce) {
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    reply_error(status{status_code::unimplemented, path + " accepts only GET and HEAD"}, 405,
                {{"Allow", "GET, HEAD"}});
    return;
  }
  http_reply reply;
  try {
    reply = produce();
  } catch (...) {
    reply = http_reply{500, "text/plain; charset=utf-8", "internal error\n"};
  }
  if (reply.status < 200 || reply.status > 599) reply.status = 500;
  // These statuses must not carry a body (Beast refuses to send one).
  if (reply.status == 204 || reply.status == 304) reply.body.clear();
  response_type response{static_cast<http::status>(reply.status), exchange_.http_version};
  response.set(http::field::content_type, reply.content_type);
  for (const auto& [name, value] : reply.headers) response.set(name, value);
  response.body() = std::move(reply.body);
  write_response(std::move(response));
}

void http_session::handle_unary(request_type request, const unary_route& route) {
  if (state_->draining) {
    close_after_write_ = true;
    reply_error(status{status_code::unavailable, "the server is shutting down"});
    return;
  }
  const std::string_view content_type = to_std(request[http::field::content_type]);
  const std::optional<codec> wire_codec = codec_for_content_type(content_type);
  if (!wire_codec) {
    reply_error(status{status_code::unimplemented,
                       "content-type \"" + std::string(content_type) +
                           "\" is not supported; use application/proto or application/json"},
                415, {{"Accept-Post", std::string(supported_content_types)}});
    return;
  }
  auto plan = plan_unary_call(state_->options, *wire_codec, lower_cased_headers(request),
                              std::move(request.body()), peer_, std::chrono::steady_clock::now());
  if (!plan.ok()) {
    reply_error(plan.error());
    return;
  }
  plan->context.client_identity = client_identity_;
  exchange_.wire_codec = *wire_codec;
  exchange_.gzip_response_allowed = plan->gzip_response_allowed;
  dispatch(route, std::move(plan).value());
}

// --- calls ---

void http_session::dispatch(const unary_route& route, unary_call_plan plan) {
  const uint64_t call_id = ++current_call_id_;
  phase_ = phase::awaiting_handler;
  unsettled_call_.emplace(state_->unsettled_calls);
  call_deadline_.expires_at(plan.context.deadline);
  call_deadline_.async_wait([self = shared_from_this(), call_id](beast::error_code ec) {
    if (!ec) self->on_call_deadline(call_id);
  });
  auto completion = std::make_shared<call_completion>(state_, weak_from_this(), call_id);
  try {
    route.call(plan.context, std::move(plan.message), [completion](result<std::string> answer) {
      completion->complete(std::move(answer));
    });
  } catch (...) {
    // Exceptions stop here; if the handler answered before throwing, that answer stands.
    completion->complete(status{status_code::internal, "the handler failed"});
  }
}

void http_session::on_call_answered(uint64_t call_id, result<std::string> answer) {
  // A stale id or phase means the deadline answered first or the connection is gone.
  if (closed_ || phase_ != phase::awaiting_handler || call_id != current_call_id_) return;
  try {
    call_deadline_.cancel();
  } catch (...) {
    // The deadline handler checks the phase, so a missed cancel is harmless.
  }
  if (answer.ok()) {
    reply_success(std::move(answer).value());
  } else {
    reply_error(answer.error());
  }
}

void http_session::on_call_deadline(uint64_t call_id) {
  if (closed_ || phase_ != phase::awaiting_handler || call_id != current_call_id_) return;
  reply_error(
      status{status_code::deadline_exceeded, "the call did not finish before its deadline"});
}

// --- writing ---

void http_session::reply_success(std::string message) {
  response_type response{http::status::ok, exchange_.http_version};
  response.set(http::field::content_type, content_type_for(exchange_.wire_codec));
  if (exchange_.gzip_response_allowed && message.size() >= min_gzip_response_bytes) {
    if (auto compressed = gzip_compress(message); compressed.ok()) {
      message = std::move(compressed).value();
      response.set(http::field::content_encoding, "gzip");
    }
  }
  response.body() = std::move(message);
  write_response(std::move(response));
}

void http_session::reply_error(const status& error, unsigned http_status,
                               std::vector<std::pair<std::string, std::string>> extra_headers) {
  response_type response;
  response.version(exchange_.http_version);
  response.result(http_status != 0 ? http_status : http_status_for(error.code()));
  response.set(http::field::content_type, "application/json");
  for (auto& [name, value] : extra_headers) response.set(name, value);
  if (error.retry_after_seconds() > 0) {
    response.set(http::field::retry_after, std::to_string(error.retry_after_seconds()));
  }
  response.body() = error_body_json(error);
  write_response(std::move(response));
}

void http_session::reply_error_and_close(const status& error, unsigned http_status) {
  exchange_ = exchange{};
  close_after_write_ = true;
  reply_error(error, http_status);
}

void http_session::write_response(response_type response) {
  phase_ = phase::writing;
  const bool keep_alive = exchange_.keep_alive && !close_after_write_ && !state_->draining;
  close_after_write_ = !keep_alive;
  response.keep_alive(keep_alive);
  response.prepare_payload();
  // HEAD gets the headers of GET, Content-Length included, without the body.
  if (exchange_.head) response.body().clear();
  response_ = std::move(response);
  stream_.expires_after(state_->options.transfer_timeout);
  http::async_write(stream_, *response_, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->on_written(ec);
  });
}

void http_session::on_written(beast::error_code ec) {
  if (closed_) return;
  unsettled_call_.reset();
  response_.reset();
  if (ec) {
    close();
  } else if (close_after_write_) {
    close_gracefully();
  } else {
    wait_for_next_request();
  }
}

// --- closing ---

void http_session::close_gracefully() {
  phase_ = phase::closing;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) {
    close();
    return;
  }
  stream_.expires_after(linger_time);
  discard_until_closed();
}

void http_session::discard_until_closed() {
  stream_.async_read_some(net::buffer(discard_buffer_),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (self->closed_) return;
                            if (ec) {
                              self->close();
                              return;
                            }
                            self->discard_until_closed();
                          });
}

void http_session::close() {
  if (closed_) return;
  closed_ = true;
  phase_ = phase::closing;
  unsettled_call_.reset();
  open_stream_.reset();
  // Pending writes still use the exchange's buffers: it lives until the session does.
  if (stream_exchange_) stream_exchange_->channel->abort(connection_closed());
  try {
    call_deadline_.cancel();
  } catch (...) {
    // Nothing to do: the deadline handler sees closed_.
  }
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
}

}  // namespace billing::gateway
