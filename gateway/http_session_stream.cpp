// The server-streaming half of http_session: a 200 response with chunked
// transfer encoding, one chunk per enveloped message, ending with the
// end-of-stream envelope and the last chunk. A read stays pending on the
// socket meanwhile, so a client that leaves is noticed even while the stream
// is idle.
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_cat.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <mutex>

#include "gateway/connect_codec.hpp"
#include "gateway/http_fields.hpp"
#include "gateway/http_session.hpp"

namespace billing::gateway {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

namespace {

// What a client may send while its stream runs (the next pipelined request)
// before the session stops reading ahead; it is parsed after the stream.
constexpr size_t max_read_ahead_bytes = 64 * 1024;

}  // namespace

void http_session::handle_stream(request_type request, const stream_route& route) {
  const std::string_view content_type = to_std(request[http::field::content_type]);
  const std::optional<codec> wire_codec = codec_for_stream_content_type(content_type);
  if (!wire_codec) {
    reply_error(status{status_code::unimplemented,
                       "content-type \"" + std::string(content_type) +
                           "\" is not supported by this server-streaming procedure; use "
                           "application/connect+proto or application/connect+json"},
                415, {{"Accept-Post", std::string(supported_stream_content_types)}});
    return;
  }
  if (exchange_.http_version < 11) {
    reply_error(status{status_code::unimplemented,
                       "server streaming needs HTTP/1.1 (chunked transfer encoding)"},
                505);
    return;
  }
  // From here on every error is an end-of-stream message in a 200 response,
  // the way Connect streaming clients expect it.
  if (state_->draining) {
    close_after_write_ = true;
    start_stream(*wire_codec, nullptr,
                 status{status_code::unavailable, "the server is shutting down"});
    return;
  }
  auto plan = plan_stream_call(state_->options, *wire_codec, lower_cased_headers(request),
                               std::move(request.body()), peer_, std::chrono::steady_clock::now());
  if (plan.ok()) plan->context.client_identity = client_identity_;
  start_stream(*wire_codec, &route, std::move(plan));
}

std::shared_ptr<stream_channel> http_session::open_channel(bool gzip_messages) {
  stream_channel::settings settings;
  settings.max_buffered_bytes = state_->options.max_stream_buffer_bytes;
  settings.gzip_messages = gzip_messages;
  // Producers wake the writer from their own threads; like call completions,
  // only while the server's executor is still there.
  auto wake = [state = state_, session = weak_from_this()] {
    std::lock_guard lock(state->completion_mutex);
    if (!state->completions_open) return;
    if (auto self = session.lock()) {
      auto executor = self->stream_.get_executor();
      net::post(executor, [self = std::move(self)] { self->pump_stream(); });
    }
  };
  return std::make_shared<stream_channel>(settings, std::move(wake));
}

void http_session::start_stream(codec wire_codec, const stream_route* route,
                                result<stream_call_plan> plan) {
  const bool gzip_messages = plan.ok() && plan->gzip_messages;
  auto channel = open_channel(gzip_messages);
  phase_ = phase::streaming;
  const bool keep_alive = exchange_.keep_alive && !close_after_write_ && !state_->draining;
  close_after_write_ = !keep_alive;
  unsettled_call_.emplace(state_->unsettled_calls);
  open_stream_.emplace(state_->open_streams);

  auto& exchange = stream_exchange_.emplace();
  exchange.channel = channel;
  exchange.header.result(http::status::ok);
  exchange.header.version(exchange_.http_version);
  exchange.header.set(http::field::content_type, stream_content_type_for(wire_codec));
  if (gzip_messages) exchange.header.set("Connect-Content-Encoding", "gzip");
  exchange.header.keep_alive(keep_alive);
  exchange.header.chunked(true);
  exchange.header_serializer.emplace(exchange.header);

  watch_for_disconnect();
  exchange.writing = true;
  stream_.expires_after(state_->options.transfer_timeout);
  http::async_write_header(stream_, *exchange.header_serializer,
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             if (self->closed_ || !self->stream_exchange_) return;
                             self->stream_exchange_->writing = false;
                             if (ec) {
                               self->close();
                               return;
                             }
                             self->pump_stream();
                           });

  if (!plan.ok()) {
    channel->finish(plan.error());
    return;
  }
  const uint64_t call_id = ++current_call_id_;
  call_deadline_.expires_at(plan->context.deadline);
  call_deadline_.async_wait([self = shared_from_this(), call_id](beast::error_code ec) {
    if (!ec) self->on_stream_deadline(call_id);
  });
  try {
    route->call(plan->context, std::move(plan->message), channel);
  } catch (...) {
    // If the handler finished the stream before throwing, that outcome stands.
    channel->finish(status{status_code::internal, "the handler failed"});
  }
}

void http_session::pump_stream() {
  if (closed_ || phase_ != phase::streaming || !stream_exchange_) return;
  stream_exchange& exchange = *stream_exchange_;
  if (exchange.writing) return;
  if (exchange.outbox.empty()) {
    auto pending = exchange.channel->take();
    for (auto& frame : pending.frames) exchange.outbox.push_back({std::move(frame), false});
    if (pending.end_frame) exchange.outbox.push_back({std::move(*pending.end_frame), true});
    if (exchange.outbox.empty()) return;  // the channel wakes us on the next message
  }
  const outbound_frame& next = exchange.outbox.front();
  exchange.writing = true;
  stream_.expires_after(state_->options.transfer_timeout);
  auto on_written = [self = shared_from_this()](beast::error_code ec, size_t) {
    self->on_stream_frame_written(ec);
  };
  if (next.ends_stream) {
    net::async_write(
        stream_,
        beast::buffers_cat(http::make_chunk(net::buffer(next.bytes)), http::make_chunk_last()),
        std::move(on_written));
  } else {
    net::async_write(stream_, http::make_chunk(net::buffer(next.bytes)), std::move(on_written));
  }
}

void http_session::on_stream_frame_written(beast::error_code ec) {
  if (closed_ || !stream_exchange_) return;
  stream_exchange& exchange = *stream_exchange_;
  exchange.writing = false;
  if (ec) {
    close();
    return;
  }
  const outbound_frame written = std::move(exchange.outbox.front());
  exchange.outbox.pop_front();
  if (written.ends_stream) {
    end_stream_exchange();
    return;
  }
  exchange.channel->written(written.bytes.size());  // may run the handler's on_drained
  pump_stream();
}

void http_session::on_stream_deadline(uint64_t call_id) {
  if (closed_ || phase_ != phase::streaming || call_id != current_call_id_ || !stream_exchange_) {
    return;
  }
  stream_exchange_->channel->finish(
      status{status_code::deadline_exceeded, "the stream reached its deadline"});
  pump_stream();
}

void http_session::end_stream_exchange() {
  open_stream_.reset();
  unsettled_call_.reset();
  stream_exchange_.reset();  // its channel is finished and every write is done
  try {
    call_deadline_.cancel();
  } catch (...) {
    // The deadline handler checks the phase, so a missed cancel is harmless.
  }
  phase_ = phase::writing;
  if (watch_pending_) {
    // Its handler goes on with after_stream(); two reads may not be pending.
    beast::error_code ignored;
    stream_.socket().cancel(ignored);
    return;
  }
  after_stream();
}

void http_session::watch_for_disconnect() {
  watch_pending_ = true;
  stream_.expires_never();  // a stream may be idle for as long as its deadline allows
  stream_.async_read_some(
      buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t received) {
        self->watch_pending_ = false;
        if (self->closed_) return;
        self->buffer_.commit(received);
        if (self->phase_ == phase::streaming) {
          if (ec) {
            self->close();  // the client left: close() ends the stream, on_closed fires
          } else if (self->buffer_.size() < max_read_ahead_bytes) {
            self->watch_for_disconnect();
          }
          return;
        }
        if (ec && ec != net::error::operation_aborted) {
          self->close();
          return;
        }
        self->after_stream();
      });
}

void http_session::after_stream() {
  if (close_after_write_) {
    close_gracefully();
  } else {
    wait_for_next_request();
  }
}

}  // namespace billing::gateway
