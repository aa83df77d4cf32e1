// A small blocking HTTP/1.1 client on Boost.Beast, plain or TLS, one
// keep-alive connection, one request at a time: what billingctl, the OTLP
// span exporter and the benchmark tools need to talk to a server. Beast is
// confined to http_client.cpp.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "model/status.hpp"

namespace billing::client {

// Where a server is: from "http://host:port[/path]", "https://..." or "host:port" (http).
struct server_url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string path;  // "" or "/..." without a trailing slash
};

// invalid_argument naming what is wrong with `url`.
result<server_url> parse_server_url(std::string_view url);

struct http_client_options {
  // PEM file of the CAs that may sign an https server's certificate; empty:
  // the system's default trust store.
  std::string ca_file;
  // PEM files of a client certificate and its key for https servers that
  // ask for one (both or neither).
  std::string cert_file;
  std::string key_file;
  // For connecting and for each whole request/response exchange.
  std::chrono::milliseconds timeout{10'000};
};

struct http_answer {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  // The header's value, or "" when absent.
  std::string header(const std::string& lower_case_name) const;
};

using http_headers = std::map<std::string, std::string>;

// Why an exchange failed: the server could not be reached or talked to
// (connect, TLS, timeout, reset). Anything the server answered is an http_answer.
struct transport_error {
  std::string message;
};

class http_client {
 public:
  http_client(server_url server, http_client_options options);
  ~http_client();
  http_client(http_client&&) noexcept;
  http_client& operator=(http_client&&) noexcept;

  const server_url& server() const;

  // POSTs `body` to server().path + `target`; connects (again) when needed.
  // True with whatever the server answered in `answer`; false with why the
  // exchange failed in `failure`.
  bool post(std::string_view target, const http_headers& headers, std::string body,
            http_answer& answer, transport_error& failure);

  // POSTs and hands the response body to `on_body` piece by piece as it
  // arrives (server streams), without a deadline once the headers are in;
  // `on_body` returns false to stop reading. `answer` gets status and headers
  // (and the body only when the status is not 200).
  bool post_streaming(std::string_view target, const http_headers& headers, std::string body,
                      const std::function<bool(std::string_view)>& on_body, http_answer& answer,
                      transport_error& failure);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace billing::client
