// A blocking Connect-protocol client over http_client: unary calls in
// application/proto and server streams in application/connect+proto, with a
// bearer token. Errors say where the call failed, so a caller (billingctl's
// exit codes) can tell "could not reach the server" from "the server said no".
#pragma once

#include <google/protobuf/message.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "client/http_client.hpp"
#include "model/status.hpp"

namespace billing::client {

enum class failure_kind {
  transport,  // not reached, TLS failed, timed out, connection lost
  protocol,   // reached, but the answer is not a Connect answer we can read
  server,     // a Connect error from the server: error.code() is its code
};

struct call_error {
  failure_kind kind = failure_kind::server;
  status error;
};

// The Connect code named `name` ("not_found"), or unknown.
status_code status_code_from_name(std::string_view name);

class connect_client {
 public:
  // `bearer_token` empty: no Authorization header.
  connect_client(server_url server, http_client_options options, std::string bearer_token);

  // Sent with every call from now on (e.g. "traceparent").
  void set_header(std::string lower_case_name, std::string value);

  // `procedure` is "/package.Service/Method". nullopt: `response` holds the answer.
  std::optional<call_error> unary(std::string_view procedure,
                                  const google::protobuf::Message& request,
                                  google::protobuf::Message& response);

  // Calls `on_message` with each streamed message (decoded into `message`,
  // reused) until the server ends the stream or `on_message` returns false.
  // nullopt: the stream ended ok (or was stopped by `on_message`).
  std::optional<call_error> server_stream(
      std::string_view procedure, const google::protobuf::Message& request,
      google::protobuf::Message& message,
      const std::function<bool(const google::protobuf::Message&)>& on_message);

 private:
  http_headers headers(std::string_view content_type) const;

  http_client http_;
  std::string bearer_token_;
  http_headers extra_headers_;
};

}  // namespace billing::client
