#include "client/http_client.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <optional>

namespace billing::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

template <class Fields>
std::map<std::string, std::string> headers_of(const Fields& fields) {
  std::map<std::string, std::string> headers;
  for (const auto& field : fields) {
    headers[lower(std::string{field.name_string()})] = std::string{field.value()};
  }
  return headers;
}

}  // namespace

result<server_url> parse_server_url(std::string_view url) {
  server_url parsed;
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    parsed.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.find("://") != std::string_view::npos) {
    return status{status_code::invalid_argument,
                  fmt::format("'{}': only http:// and https:// servers are supported", url)};
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) parsed.path = std::string{rest.substr(slash)};
  while (!parsed.path.empty() && parsed.path.back() == '/') parsed.path.pop_back();
  const auto colon = authority.rfind(':');
  const bool bracketed = authority.starts_with('[');
  if (colon != std::string_view::npos && (!bracketed || authority[colon - 1] == ']')) {
    parsed.host = std::string{authority.substr(0, colon)};
    parsed.port = std::string{authority.substr(colon + 1)};
  } else {
    parsed.host = std::string{authority};
    parsed.port = parsed.tls ? "443" : "80";
  }
  if (bracketed && parsed.host.size() >= 2)
    parsed.host = parsed.host.substr(1, parsed.host.size() - 2);
  if (parsed.host.empty()) {
    return status{status_code::invalid_argument, fmt::format("'{}' names no host", url)};
  }
  if (parsed.port.empty() || !std::all_of(parsed.port.begin(), parsed.port.end(),
                                          [](char c) { return c >= '0' && c <= '9'; })) {
    return status{status_code::invalid_argument, fmt::format("'{}' has no valid port", url)};
  }
  return parsed;
}

std::string http_answer::header(const std::string& lower_case_name) const {
  const auto found = headers.find(lower_case_name);
  return found == headers.end() ? std::string{} : found->second;
}

struct http_client::impl {
  server_url server;
  http_client_options options;
  asio::io_context io;
  std::optional<asio::ssl::context> tls_context;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  bool connected = false;

  beast::tcp_stream& socket() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  template <class Work>
  auto with_stream(Work&& work) {
    if (secure) return work(*secure);
    return work(*plain);
  }

  void disconnect() {
    connected = false;
    beast::error_code ignored;
    if (plain) plain->socket().close(ignored);
    if (secure) beast::get_lowest_layer(*secure).socket().close(ignored);
    plain.reset();
    secure.reset();
    buffer.clear();
  }

  bool connect(transport_error& failure) {
    if (connected) return true;
    disconnect();
    beast::error_code ec;
    asio::ip::tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(server.host, server.port, ec);
    if (ec) {
      failure.message = fmt::format("cannot resolve {}: {}", server.host, ec.message());
      return false;
    }
    if (server.tls) {
      if (!tls_context) {
        tls_context.emplace(asio::ssl::context::tls_client);
        tls_context->set_verify_mode(asio::ssl::verify_peer);
        if (options.ca_file.empty()) {
          tls_context->set_default_verify_paths(ec);
        } else {
          tls_context->load_verify_file(options.ca_file, ec);
        }
        if (ec) {
          tls_context.reset();
          failure.message =
              fmt::format("cannot load the CA file '{}': {}", options.ca_file, ec.message());
          return false;
        }
        if (!options.cert_file.empty()) {
          tls_context->use_certificate_chain_file(options.cert_file, ec);
          if (!ec) tls_context->use_private_key_file(options.key_file, asio::ssl::context::pem, ec);
          if (ec) {
            tls_context.reset();
            failure.message = fmt::format("cannot load the client certificate '{}' or key '{}': {}",
                                          options.cert_file, options.key_file, ec.message());
            return false;
          }
        }
      }
      secure.emplace(io, *tls_context);
      secure->set_verify_callback(asio::ssl::host_name_verification(server.host));
      // SNI, so a server with several names picks the right certificate.
      SSL_set_tlsext_host_name(secure->native_handle(), server.host.c_str());
    } else {
      plain.emplace(io);
    }
    socket().expires_after(options.timeout);
    socket().connect(endpoints, ec);
    if (!ec && secure) secure->handshake(asio::ssl::stream_base::client, ec);
    if (ec) {
      failure.message =
          fmt::format("cannot connect to {}:{}: {}", server.host, server.port, ec.message());
      disconnect();
      return false;
    }
    connected = true;
    return true;
  }

  http::request<http::string_body> request_for(std::string_view target, const http_headers& headers,
                                               std::string body) {
    http::request<http::string_body> post{http::verb::post, server.path + std::string{target}, 11};
    post.set(http::field::host, server.host);
    for (const auto& [name, value] : headers) post.set(name, value);
    post.keep_alive(true);
    post.body() = std::move(body);
    post.prepare_payload();
    return post;
  }

  bool fail(transport_error& failure, std::string_view doing, const beast::error_code& ec) {
    failure.message = fmt::format("{} {}:{}: {}", doing, server.host, server.port, ec.message());
    disconnect();
    return false;
  }
};

http_client::http_client(server_url server, http_client_options options)
    : impl_(std::make_unique<impl>()) {
  impl_->server = std::move(server);
  impl_->options = std::move(options);
}
http_client::~http_client() = default;
http_client::http_client(http_client&&) noexcept = default;
http_client& http_client::operator=(http_client&&) noexcept = default;

const server_url& http_client::server() const {
  return impl_->server;
}

bool http_client::post(std::string_view target, const http_headers& headers, std::string body,
                       http_answer& answer, transport_error& failure) {
  auto& self = *impl_;
  // A kept-alive connection the server closed meanwhile fails on first use:
  // one retry on a fresh connection (the request never reached a handler).
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = self.connected;
    if (!self.connect(failure)) return false;
    auto request = self.request_for(target, headers, body);
    http::response<http::string_body> response;
    beast::error_code ec;
    self.socket().expires_after(self.options.timeout);
    self.with_stream([&](auto& stream) {
      http::write(stream, request, ec);
      if (!ec) http::read(stream, self.buffer, response, ec);
    });
    if (ec) {
      if (reused && attempt == 0 &&
          (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe)) {
        self.disconnect();
        continue;
      }
      return self.fail(failure, "exchange with", ec);
    }
    answer.status = response.result_int();
    answer.headers = headers_of(response);
    answer.body = std::move(response.body());
    if (!response.keep_alive()) self.disconnect();
    return true;
  }
  return false;
}

bool http_client::post_streaming(std::string_view target, const http_headers& headers,
                                 std::string body,
                                 const std::function<bool(std::string_view)>& on_body,
                                 http_answer& answer, transport_error& failure) {
  auto& self = *impl_;
  self.disconnect();  // a fresh connection: the stream holds it until it ends
  if (!self.connect(failure)) return false;
  auto request = self.request_for(target, headers, std::move(body));
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  beast::error_code ec;
  self.socket().expires_after(self.options.timeout);
  self.with_stream([&](auto& stream) {
    http::write(stream, request, ec);
    if (!ec) http::read_header(stream, self.buffer, parser, ec);
  });
  if (ec) return self.fail(failure, "exchange with", ec);
  answer.status = parser.get().result_int();
  answer.headers = headers_of(parser.get());
  self.socket().expires_never();
  std::array<char, 16 * 1024> chunk{};
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    self.with_stream([&](auto& stream) { http::read_some(stream, self.buffer, parser, ec); });
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return self.fail(failure, "reading the stream from", ec);
    const std::string_view piece{chunk.data(), chunk.size() - parser.get().body().size};
    if (answer.status != 200) {
      answer.body.append(piece);
    } else if (!piece.empty() && !on_body(piece)) {
      break;
    }
  }
  self.disconnect();
  return true;
}

}  // namespace billing::client
