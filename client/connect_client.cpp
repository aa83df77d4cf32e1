#include "client/connect_client.hpp"

#include <fmt/format.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "gateway/connect_stream_codec.hpp"

namespace billing::client {
namespace {

// Connect's HTTP-status-to-code table, for error answers without a JSON body
// (e.g. a proxy's).
status_code code_for_http_status(unsigned http_status) {
  switch (http_status) {
    case 400:
      return status_code::internal;
    case 401:
      return status_code::unauthenticated;
    case 403:
      return status_code::permission_denied;
    case 404:
      return status_code::unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return status_code::unavailable;
    default:
      return status_code::unknown;
  }
}

// {"code": "...", "message": "..."} as Connect sends it; nullopt if not that shape.
std::optional<status> parse_error_json(std::string_view json) {
  google::protobuf::Struct parsed;
  if (!google::protobuf::util::JsonStringToMessage(std::string{json}, &parsed).ok()) {
    return std::nullopt;
  }
  const auto& fields = parsed.fields();
  const auto code = fields.find("code");
  if (code == fields.end() || !code->second.has_string_value()) return std::nullopt;
  const auto message = fields.find("message");
  return status{status_code_from_name(code->second.string_value()),
                message != fields.end() && message->second.has_string_value()
                    ? message->second.string_value()
                    : std::string{}};
}

call_error error_answer(const http_answer& answer) {
  if (auto parsed = parse_error_json(answer.body)) {
    return {failure_kind::server, std::move(*parsed)};
  }
  return {failure_kind::server,
          status{code_for_http_status(answer.status),
                 fmt::format("HTTP {} without a Connect error body", answer.status)}};
}

constexpr uint64_t kMaxMessageBytes = uint64_t{64} << 20;

// The payload length an envelope's prefix announces (big-endian, bytes 1..4).
uint64_t announced_length(std::string_view prefix) {
  uint64_t length = 0;
  for (size_t i = 1; i < gateway::envelope_prefix_bytes; ++i) {
    length = (length << 8) | static_cast<unsigned char>(prefix[i]);
  }
  return length;
}

call_error protocol_error(std::string message) {
  return {failure_kind::protocol, status{status_code::internal, std::move(message)}};
}

}  // namespace

status_code status_code_from_name(std::string_view name) {
  for (uint8_t raw = 0; raw <= static_cast<uint8_t>(status_code::unauthenticated); ++raw) {
    const auto code = static_cast<status_code>(raw);
    if (to_string(code) == name) return code;
  }
  return status_code::unknown;
}

connect_client::connect_client(server_url server, http_client_options options,
                               std::string bearer_token)
    : http_(std::move(server), std::move(options)), bearer_token_(std::move(bearer_token)) {}

void connect_client::set_header(std::string lower_case_name, std::string value) {
  extra_headers_[std::move(lower_case_name)] = std::move(value);
}

http_headers connect_client::headers(std::string_view content_type) const {
  http_headers all = extra_headers_;
  all.insert_or_assign("content-type", std::string{content_type});
  // (GCC 12 warns falsely on assigning a one-character literal here.)
  all.insert_or_assign("connect-protocol-version", std::string(1, '1'));
  if (!bearer_token_.empty()) all["authorization"] = fmt::format("Bearer {}", bearer_token_);
  return all;
}

std::optional<call_error> connect_client::unary(std::string_view procedure,
                                                const google::protobuf::Message& request,
                                                google::protobuf::Message& response) {
  http_answer answer;
  transport_error failure;
  if (!http_.post(procedure, headers("application/proto"), request.SerializeAsString(), answer,
                  failure)) {
    return call_error{failure_kind::transport, status{status_code::unavailable, failure.message}};
  }
  if (answer.status != 200) return error_answer(answer);
  if (!response.ParseFromString(answer.body)) {
    return protocol_error(fmt::format("the answer to {} is not a {}", procedure,
                                      response.GetDescriptor()->full_name()));
  }
  return std::nullopt;
}

std::optional<call_error> connect_client::server_stream(
    std::string_view procedure, const google::protobuf::Message& request,
    google::protobuf::Message& message,
    const std::function<bool(const google::protobuf::Message&)>& on_message) {
  std::string pending;
  std::optional<call_error> ended;
  bool finished = false;
  // Envelopes may arrive split or several at once: cut whole ones off `pending`.
  auto on_body = [&](std::string_view piece) {
    pending.append(piece);
    std::string_view rest = pending;
    while (rest.size() >= gateway::envelope_prefix_bytes) {
      if (rest.size() < gateway::envelope_prefix_bytes + announced_length(rest)) break;
      std::string_view attempt = rest;
      auto envelope = gateway::take_envelope(attempt, kMaxMessageBytes);
      if (!envelope.ok()) {
        ended = protocol_error(envelope.error().message());
        return false;
      }
      rest = attempt;
      if (envelope->flags & gateway::envelope_end_stream) {
        finished = true;
        google::protobuf::Struct end;
        if (!google::protobuf::util::JsonStringToMessage(envelope->payload, &end).ok()) {
          ended = protocol_error("unreadable end-of-stream message");
          return false;
        }
        const auto error = end.fields().find("error");
        if (error != end.fields().end()) {
          std::string error_json;
          (void)google::protobuf::util::MessageToJsonString(error->second, &error_json);
          auto parsed = parse_error_json(error_json);
          ended = call_error{failure_kind::server,
                             parsed ? *parsed : status{status_code::unknown, error_json}};
        }
        return false;
      }
      if (envelope->flags & gateway::envelope_compressed) {
        ended = protocol_error("a compressed message although none was asked for");
        return false;
      }
      if (!message.ParseFromString(envelope->payload)) {
        ended = protocol_error(
            fmt::format("a streamed message is not a {}", message.GetDescriptor()->full_name()));
        return false;
      }
      if (!on_message(message)) {
        finished = true;
        return false;
      }
    }
    pending.erase(0, pending.size() - rest.size());
    return true;
  };
  http_answer answer;
  transport_error failure;
  if (!http_.post_streaming(procedure, headers("application/connect+proto"),
                            gateway::encode_envelope(0, request.SerializeAsString()), on_body,
                            answer, failure)) {
    return call_error{failure_kind::transport, status{status_code::unavailable, failure.message}};
  }
  if (answer.status != 200) return error_answer(answer);
  if (ended) return ended;
  if (!finished) return protocol_error("the stream ended without an end-of-stream message");
  return std::nullopt;
}

}  // namespace billing::client
