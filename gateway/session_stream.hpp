// The byte stream of one connection: plain TCP, or TLS over TCP when the
// server has a certificate. One type with the interface of Beast's
// tcp_stream (timeouts, socket, close, async read/write), so http_session
// is the same code for both. Internal to the gateway.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <utility>
#include <variant>

namespace billing::gateway {

class session_stream {
 public:
  using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
  using executor_type = boost::beast::tcp_stream::executor_type;

  // TLS when `tls` is non-null (the context must outlive the handshake; the
  // stream keeps its own reference to the OpenSSL context afterwards).
  session_stream(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context* tls)
      : stream_(make(std::move(socket), tls)) {}

  bool is_tls() const { return std::holds_alternative<tls_stream>(stream_); }
  tls_stream& tls() { return std::get<tls_stream>(stream_); }

  boost::beast::tcp_stream& tcp() {
    return std::visit(
        [](auto& s) -> boost::beast::tcp_stream& { return boost::beast::get_lowest_layer(s); },
        stream_);
  }

  executor_type get_executor() { return tcp().get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return tcp().socket(); }
  template <class Duration>
  void expires_after(Duration timeout) {
    tcp().expires_after(timeout);
  }
  void expires_never() { tcp().expires_never(); }
  void close() { tcp().close(); }

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    std::visit([&](auto& s) { s.async_read_some(buffers, std::forward<Handler>(handler)); },
               stream_);
  }

  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    std::visit([&](auto& s) { s.async_write_some(buffers, std::forward<Handler>(handler)); },
               stream_);
  }

 private:
  using either = std::variant<boost::beast::tcp_stream, tls_stream>;
  static either make(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context* tls) {
    if (tls == nullptr)
      return either{std::in_place_type<boost::beast::tcp_stream>, std::move(socket)};
    return either{std::in_place_type<tls_stream>, boost::beast::tcp_stream(std::move(socket)),
                  *tls};
  }

  either stream_;
};

}  // namespace billing::gateway
