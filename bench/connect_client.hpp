// A blocking binary-Connect client for the benchmark tools: one keep-alive
// HTTP/1.1 connection, one call at a time. Not for the service itself.
#pragma once

#include <fmt/format.h>
#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace billing::bench {

class connect_client {
 public:
  // `target` is HOST:PORT; connects on the first call.
  explicit connect_client(const std::string& target) {
    const auto colon = target.rfind(':');
    host_ = target.substr(0, colon);
    port_ = target.substr(colon + 1);
  }

  // Posts one binary Connect call to `path` (e.g.
  // "/billing.v1.BillingQueryService/GetCustomerUsage"); returns the latency
  // in ms, or -1 after printing what failed (transport, HTTP status, bytes).
  double call(const std::string& path, const google::protobuf::Message& request,
              google::protobuf::Message& response) {
    namespace http = boost::beast::http;
    boost::beast::error_code ec;
    if (!connected_) {
      boost::asio::ip::tcp::resolver resolver(io_);
      auto endpoints = resolver.resolve(host_, port_, ec);
      if (!ec) stream_.connect(endpoints, ec);
      if (ec) return fail(path, fmt::format("connect: {}", ec.message()));
      connected_ = true;
    }
    http::request<http::string_body> post{http::verb::post, path, 11};
    post.set(http::field::host, host_);
    post.set(http::field::content_type, "application/proto");
    post.keep_alive(true);
    post.body() = request.SerializeAsString();
    post.prepare_payload();
    const auto started = std::chrono::steady_clock::now();
    http::response<http::string_body> answer;
    http::write(stream_, post, ec);
    if (!ec) http::read(stream_, buffer_, answer, ec);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    if (ec) {
      connected_ = false;
      stream_.close();
      return fail(path, fmt::format("transport: {}", ec.message()));
    }
    if (answer.result() != http::status::ok) {
      return fail(path, fmt::format("HTTP {} {}", answer.result_int(), answer.body()));
    }
    if (!response.ParseFromString(answer.body())) return fail(path, "unparsable response");
    return ms;
  }

 private:
  static double fail(const std::string& path, const std::string& why) {
    fmt::print(stderr, "{} failed: {}\n", path, why);
    return -1;
  }

  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_{io_};
  boost::beast::flat_buffer buffer_;
  std::string host_;
  std::string port_;
  bool connected_ = false;
};

inline google::protobuf::Timestamp timestamp_of(int64_t unix_ns) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(unix_ns / 1'000'000'000);
  ts.set_nanos(static_cast<int32_t>(unix_ns % 1'000'000'000));
  return ts;
}

}  // namespace billing::bench
