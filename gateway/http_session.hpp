// One HTTP/1.1 connection: reads requests one at a time (so pipelined
// requests are answered in order), routes them, dispatches unary calls to
// handlers and writes the answers, or streams a server-streaming call's
// messages as chunks (http_session_stream.cpp). Everything runs on the
// connection's strand; handler completions are posted back to it. Internal to
// the gateway: only gateway .cpp files include this header, which keeps Beast
// out of the rest of the build.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/connect_call.hpp"
#include "gateway/server_state.hpp"
#include "gateway/session_stream.hpp"

namespace billing::gateway {

class http_session : public std::enable_shared_from_this<http_session> {
 public:
  // `tls`: the server's TLS context when the connection was accepted (kept
  // for the connection's life), or null for plain HTTP.
  http_session(boost::asio::ip::tcp::socket socket, std::shared_ptr<server_state> state,
               std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~http_session();
  http_session(const http_session&) = delete;
  http_session& operator=(const http_session&) = delete;

  // Registers with the server state and starts reading. Call once, right
  // after construction, while owned by a shared_ptr.
  void start();

  // Callable from any thread; the work happens on the session's strand.
  // Drain: close now if idle, otherwise after the current answer.
  void request_drain();
  void request_close();
  // Hands a handler's answer for `call_id` to the strand. `self` keeps the
  // session alive until the posted completion has run.
  static void post_completion(std::shared_ptr<http_session> self, uint64_t call_id,
                              result<std::string> answer);

 private:
  using request_type = boost::beast::http::request<boost::beast::http::string_body>;
  using response_type = boost::beast::http::response<boost::beast::http::string_body>;
  enum class phase { reading, idle, awaiting_handler, writing, streaming, closing };

  // The request being answered: what its response needs to know.
  struct exchange {
    unsigned http_version = 11;
    bool keep_alive = false;
    bool head = false;
    codec wire_codec = codec::proto;
    bool gzip_response_allowed = false;
  };

  void handshake();
  void read_header();
  void on_header(boost::beast::error_code ec);
  void read_body();
  void on_body(boost::beast::error_code ec);
  void wait_for_next_request();
  void on_read_error(boost::beast::error_code ec);

  void handle_request(request_type request);
  void handle_get(const request_type& request, const std::string& path,
                  const std::function<http_reply()>& produce);
  void handle_unary(request_type request, const unary_route& route);
  void dispatch(const unary_route& route, unary_call_plan plan);
  void on_call_answered(uint64_t call_id, result<std::string> answer);
  void on_call_deadline(uint64_t call_id);

  // --- server streaming (http_session_stream.cpp) ---
  struct outbound_frame {
    std::string bytes;
    bool ends_stream = false;
  };
  // The response of a stream in progress; what its writer needs to know.
  struct stream_exchange {
    boost::beast::http::response<boost::beast::http::empty_body> header;
    std::optional<boost::beast::http::response_serializer<boost::beast::http::empty_body>>
        header_serializer;
    std::shared_ptr<stream_channel> channel;
    std::deque<outbound_frame> outbox;  // taken from the channel, being written
    bool writing = false;
  };
  void handle_stream(request_type request, const stream_route& route);
  std::shared_ptr<stream_channel> open_channel(bool gzip_messages);
  // `route` is null when `plan` is an error (no handler runs).
  void start_stream(codec wire_codec, const stream_route* route, result<stream_call_plan> plan);
  void pump_stream();
  void on_stream_frame_written(boost::beast::error_code ec);
  void on_stream_deadline(uint64_t call_id);
  void end_stream_exchange();
  void watch_for_disconnect();
  void after_stream();

  void reply_success(std::string message);
  void reply_error(const status& error, unsigned http_status = 0,
                   std::vector<std::pair<std::string, std::string>> extra_headers = {});
  void reply_error_and_close(const status& error, unsigned http_status);
  void write_response(response_type response);
  void on_written(boost::beast::error_code ec);

  void close_gracefully();
  void discard_until_closed();
  void close();

  std::shared_ptr<boost::asio::ssl::context> tls_;  // before stream_, which uses it
  session_stream stream_;
  std::shared_ptr<server_state> state_;
  std::string peer_;
  std::string client_identity_;  // verified at the handshake; see call_context
  uint64_t registry_id_ = 0;
  bool registered_ = false;

  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::optional<response_type> response_;
  exchange exchange_;
  phase phase_ = phase::reading;
  bool close_after_write_ = false;
  bool closed_ = false;

  uint64_t current_call_id_ = 0;
  boost::asio::steady_timer call_deadline_;
  std::optional<counted_token> unsettled_call_;

  std::array<char, 4096> discard_buffer_{};

  std::optional<stream_exchange> stream_exchange_;
  std::optional<counted_token> open_stream_;
  bool watch_pending_ = false;
};

}  // namespace billing::gateway
