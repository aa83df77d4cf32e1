#include "gateway/connect_call.hpp"

#include <algorithm>
#include <cctype>

#include "gateway/call_tracing.hpp"
#include "gateway/connect_codec.hpp"
#include "gateway/connect_stream_codec.hpp"

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

namespace {

// The header rules unary and streaming calls share: the protocol version and
// the deadline. The context gets everything but its headers (moved in last).
// A call's deadline: the client's Connect-Timeout-Ms (capped at `max`), or
// `fallback` when it sends none; a zero fallback means no deadline.
struct timeout_rule {
  std::chrono::milliseconds fallback;
  std::chrono::milliseconds max;
};

result<call_context> plan_context(const timeout_rule& rule, codec wire_codec,
                                  const std::map<std::string, std::string>& headers,
                                  std::string peer, std::chrono::steady_clock::time_point now) {
  if (headers.contains("connect-protocol-version") &&
      header_or_empty(headers, "connect-protocol-version") != "1") {
    return status{status_code::invalid_argument,
                  "connect-protocol-version must be \"1\", got \"" +
                      std::string(header_or_empty(headers, "connect-protocol-version")) + "\""};
  }
  std::chrono::milliseconds timeout = rule.fallback;
  if (headers.contains("connect-timeout-ms")) {
    auto parsed = parse_timeout_ms(header_or_empty(headers, "connect-timeout-ms"));
    if (!parsed.ok()) return parsed.error();
    timeout = std::min(parsed.value(), rule.max);
    if (timeout.count() == 0) {
      return status{status_code::deadline_exceeded, "connect-timeout-ms is 0"};
    }
  }
  call_context context;
  context.wire_codec = wire_codec;
  context.peer = std::move(peer);
  context.deadline =
      timeout.count() == 0 ? std::chrono::steady_clock::time_point::max() : now + timeout;
  return context;
}

// The lower-cased value of an encoding header; "" when absent.
std::string encoding_named_by(const std::map<std::string, std::string>& headers,
                              const std::string& header_name) {
  return lower_case(std::string(header_or_empty(headers, header_name)));
}

// Inflates `data` per the encoding `header_name` names (gzip or identity).
result<std::string> decode_content(const server_options& options,
                                   const std::map<std::string, std::string>& headers,
                                   const std::string& header_name, std::string data) {
  const std::string encoding = encoding_named_by(headers, header_name);
  if (encoding.empty() || encoding == "identity") return data;
  if (encoding == "gzip") return gunzip_bounded(data, options.max_body_bytes);
  return status{status_code::unimplemented,
                header_name + " \"" + encoding + "\" is not supported; use gzip or identity"};
}

}  // namespace

result<unary_call_plan> plan_unary_call(const server_options& options, codec wire_codec,
                                        std::map<std::string, std::string> headers,
                                        std::string body, std::string peer,
                                        std::chrono::steady_clock::time_point now) {
  auto context = plan_context({options.default_timeout, options.max_timeout}, wire_codec, headers,
                              std::move(peer), now);
  if (!context.ok()) return context.error();
  auto message = decode_content(options, headers, "content-encoding", std::move(body));
  if (!message.ok()) return message.error();

  unary_call_plan plan;
  plan.gzip_response_allowed = accepts_gzip(header_or_empty(headers, "accept-encoding"));
  plan.message = std::move(message).value();
  plan.context = std::move(context).value();
  plan.context.headers = std::move(headers);
  start_call_trace(plan.context, options.tracer);
  return plan;
}

result<stream_call_plan> plan_stream_call(const server_options& options, codec wire_codec,
                                          std::map<std::string, std::string> headers,
                                          std::string body, std::string peer,
                                          std::chrono::steady_clock::time_point now) {
  auto context = plan_context({options.stream_default_timeout, options.stream_max_timeout},
                              wire_codec, headers, std::move(peer), now);
  if (!context.ok()) return context.error();
  // An unknown encoding is refused before the envelope is looked at.
  if (auto refused = decode_content(options, headers, "connect-content-encoding", {});
      !refused.ok()) {
    return refused.error();
  }
  auto request = parse_request_envelope(body, options.max_body_bytes);
  if (!request.ok()) return request.error();
  std::string message = std::move(request->payload);
  if ((request->flags & envelope_compressed) != 0) {
    const std::string encoding = encoding_named_by(headers, "connect-content-encoding");
    if (encoding.empty() || encoding == "identity") {
      return status{status_code::invalid_argument,
                    "the request envelope is flagged compressed but connect-content-encoding "
                    "names no compression"};
    }
    auto inflated =
        decode_content(options, headers, "connect-content-encoding", std::move(message));
    if (!inflated.ok()) return inflated.error();
    message = std::move(inflated).value();
  }

  stream_call_plan plan;
  plan.gzip_messages = accepts_gzip(header_or_empty(headers, "connect-accept-encoding"));
  plan.message = std::move(message);
  plan.context = std::move(context).value();
  plan.context.headers = std::move(headers);
  start_call_trace(plan.context, options.tracer);
  return plan;
}

}  // namespace billing::gateway
