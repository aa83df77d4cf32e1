// A blocking HTTP/1.1 test client over one TCP connection, with every
// operation bounded in time. Sends raw bytes (so tests can send malformed or
// pipelined requests) and parses responses with Beast.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace billing::gateway::testing {

using header_list = std::vector<std::pair<std::string, std::string>>;

struct test_response {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  // Sizes of the body's chunks, the last chunk's 0 included, when chunked.
  std::vector<uint64_t> chunk_sizes;

  // The header's value, or "" when absent.
  std::string header(const std::string& lower_case_name) const;
};

// A request as raw HTTP/1.1 bytes, with Host and Content-Length added.
std::string make_request(std::string_view method, std::string_view target,
                         const header_list& headers, std::string_view body);

class test_http_client {
 public:
  // `address` is "host:port" as connect_server::start() returns it.
  explicit test_http_client(std::chrono::milliseconds timeout = std::chrono::seconds{5});
  ~test_http_client();
  test_http_client(const test_http_client&) = delete;
  test_http_client& operator=(const test_http_client&) = delete;

  bool connect(const std::string& address);
  bool send(std::string_view bytes);
  // The next response; nullopt on timeout, a closed connection or bad HTTP.
  // A response to HEAD has no body but may carry Content-Length: say so.
  std::optional<test_response> read_response(bool to_head_request = false);
  // send(make_request(...)) then read_response().
  std::optional<test_response> request(std::string_view method, std::string_view target,
                                       const header_list& headers = {}, std::string_view body = {});
  // True when the server closes the connection (EOF or reset) before the
  // timeout, false when data arrives or nothing happens.
  bool closed_by_server();
  void close();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace billing::gateway::testing
