#include "test_http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <array>
#include <cctype>

namespace billing::gateway::testing {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string test_response::header(const std::string& lower_case_name) const {
  const auto found = headers.find(lower_case_name);
  return found == headers.end() ? std::string{} : found->second;
}

std::string make_request(std::string_view method, std::string_view target,
                         const header_list& headers, std::string_view body) {
  std::string request;
  request.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: test\r\n");
  for (const auto& [name, value] : headers) request.append(name + ": " + value + "\r\n");
  request.append("Content-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  request.append(body);
  return request;
}

struct test_http_client::impl {
  explicit impl(std::chrono::milliseconds op_timeout) : timeout(op_timeout) {}

  // Runs one asynchronous operation to completion, bounded by the timeout.
  template <class Start>
  beast::error_code run(Start start) {
    bool done = false;
    beast::error_code result;
    stream.expires_after(timeout);
    start([&](beast::error_code ec, size_t) {
      result = ec;
      done = true;
    });
    io.restart();
    io.run_for(timeout + std::chrono::seconds{1});
    if (!done) {  // cannot happen with the stream's timeout, but never leave a dangling op
      stream.close();
      io.restart();
      io.run();
    }
    return result;
  }

  std::chrono::milliseconds timeout;
  net::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
};

test_http_client::test_http_client(std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>(timeout)) {}

test_http_client::~test_http_client() = default;

bool test_http_client::connect(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  beast::error_code ec;
  tcp::resolver resolver(impl_->io);
  const auto endpoints = resolver.resolve(address.substr(0, colon), address.substr(colon + 1), ec);
  if (ec) return false;
  ec = impl_->run([&](auto handler) {
    impl_->stream.async_connect(
        endpoints,
        [handler](beast::error_code connect_ec, const tcp::endpoint&) { handler(connect_ec, 0); });
  });
  return !ec;
}

bool test_http_client::send(std::string_view bytes) {
  const auto ec = impl_->run([&](auto handler) {
    net::async_write(impl_->stream, net::buffer(bytes.data(), bytes.size()), handler);
  });
  return !ec;
}

std::optional<test_response> test_http_client::read_response(bool to_head_request) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::uint64_t{64} << 20);
  parser.skip(to_head_request);
  std::vector<uint64_t> chunk_sizes;
  auto on_chunk_header = [&chunk_sizes](std::uint64_t size, beast::string_view,
                                        beast::error_code&) { chunk_sizes.push_back(size); };
  parser.on_chunk_header(on_chunk_header);
  const auto ec = impl_->run(
      [&](auto handler) { http::async_read(impl_->stream, impl_->buffer, parser, handler); });
  if (ec) return std::nullopt;
  const auto& message = parser.get();
  test_response response;
  response.status = message.result_int();
  for (const auto& field : message) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    response.headers[name] = std::string(field.value());
  }
  response.body = message.body();
  response.chunk_sizes = std::move(chunk_sizes);
  return response;
}

std::optional<test_response> test_http_client::request(std::string_view method,
                                                       std::string_view target,
                                                       const header_list& headers,
                                                       std::string_view body) {
  if (!send(make_request(method, target, headers, body))) return std::nullopt;
  return read_response(method == "HEAD");
}

bool test_http_client::closed_by_server() {
  if (impl_->buffer.size() > 0) return false;
  std::array<char, 1> byte;
  const auto ec =
      impl_->run([&](auto handler) { impl_->stream.async_read_some(net::buffer(byte), handler); });
  return ec == net::error::eof || ec == net::error::connection_reset;
}

void test_http_client::close() {
  beast::error_code ignored;
  impl_->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  impl_->stream.close();
}

}  // namespace billing::gateway::testing
