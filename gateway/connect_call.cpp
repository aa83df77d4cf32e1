#include "gateway/connect_call.hpp"

#include <algorithm>
#include <cctype>

#include "gateway/connect_codec.hpp"

namespace billing::gateway {
namespace {

std::string lower_case(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string_view header_or_empty(const std::map<std::string, std::string>& headers,
                                 const std::string& name) {
  const auto found = headers.find(name);
  return found == headers.end() ? std::string_view{} : std::string_view{found->second};
}

}  // namespace

result<unary_call_plan> plan_unary_call(const server_options& options, codec wire_codec,
                                        std::map<std::string, std::string> headers,
                                        std::string body, std::string peer,
                                        std::chrono::steady_clock::time_point now) {
  if (headers.contains("connect-protocol-version") &&
      header_or_empty(headers, "connect-protocol-version") != "1") {
    return status{status_code::invalid_argument,
                  "connect-protocol-version must be \"1\", got \"" +
                      std::string(header_or_empty(headers, "connect-protocol-version")) + "\""};
  }

  std::chrono::milliseconds timeout = options.default_timeout;
  if (headers.contains("connect-timeout-ms")) {
    auto parsed = parse_timeout_ms(header_or_empty(headers, "connect-timeout-ms"));
    if (!parsed.ok()) return parsed.error();
    timeout = std::min(parsed.value(), options.max_timeout);
    if (timeout.count() == 0) {
      return status{status_code::deadline_exceeded, "connect-timeout-ms is 0"};
    }
  }

  const std::string encoding =
      lower_case(std::string(header_or_empty(headers, "content-encoding")));
  std::string message;
  if (encoding.empty() || encoding == "identity") {
    message = std::move(body);
  } else if (encoding == "gzip") {
    auto inflated = gunzip_bounded(body, options.max_body_bytes);
    if (!inflated.ok()) return inflated.error();
    message = std::move(inflated).value();
  } else {
    return status{status_code::unimplemented,
                  "content-encoding \"" + encoding + "\" is not supported; use gzip or identity"};
  }

  unary_call_plan plan;
  plan.gzip_response_allowed = accepts_gzip(header_or_empty(headers, "accept-encoding"));
  plan.message = std::move(message);
  plan.context.wire_codec = wire_codec;
  plan.context.peer = std::move(peer);
  plan.context.deadline = now + timeout;
  plan.context.headers = std::move(headers);
  return plan;
}

}  // namespace billing::gateway
