#include "gateway/connect_stream_codec.hpp"

#include "gateway/connect_codec.hpp"

namespace billing::gateway {

std::string encode_envelope(uint8_t flags, std::string_view payload) {
  const auto length = static_cast<uint32_t>(payload.size());
  std::string bytes;
  bytes.reserve(envelope_prefix_bytes + payload.size());
  bytes.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8) {
    bytes.push_back(static_cast<char>((length >> shift) & 0xFF));
  }
  bytes.append(payload);
  return bytes;
}

result<envelope> take_envelope(std::string_view& bytes, uint64_t max_payload) {
  if (bytes.size() < envelope_prefix_bytes) {
    return status{
        status_code::invalid_argument,
        "truncated envelope: " + std::to_string(bytes.size()) + " bytes, the prefix alone is 5"};
  }
  const auto flags = static_cast<uint8_t>(bytes[0]);
  if ((flags & ~(envelope_compressed | envelope_end_stream)) != 0) {
    return status{status_code::invalid_argument,
                  "envelope has unknown flags (" + std::to_string(flags) + ")"};
  }
  uint64_t length = 0;
  for (size_t i = 1; i < envelope_prefix_bytes; ++i) {
    length = (length << 8) | static_cast<uint8_t>(bytes[i]);
  }
  if (length > max_payload) {
    return status{status_code::resource_exhausted, "enveloped message of " +
                                                       std::to_string(length) + " bytes exceeds " +
                                                       std::to_string(max_payload) + " bytes"};
  }
  if (bytes.size() - envelope_prefix_bytes < length) {
    return status{status_code::invalid_argument,
                  "truncated envelope: " + std::to_string(length) + " bytes announced, " +
                      std::to_string(bytes.size() - envelope_prefix_bytes) + " present"};
  }
  envelope parsed{flags, std::string(bytes.substr(envelope_prefix_bytes, length))};
  bytes.remove_prefix(envelope_prefix_bytes + length);
  return parsed;
}

result<envelope> parse_request_envelope(std::string_view body, uint64_t max_payload) {
  auto parsed = take_envelope(body, max_payload);
  if (!parsed.ok()) return parsed;
  if ((parsed->flags & envelope_end_stream) != 0) {
    return status{status_code::invalid_argument,
                  "the request envelope is flagged end-of-stream; send one message envelope"};
  }
  if (!body.empty()) {
    return status{status_code::invalid_argument,
                  std::to_string(body.size()) +
                      " bytes follow the request message; a server-streaming request carries "
                      "exactly one enveloped message"};
  }
  return parsed;
}

std::string end_stream_json(const status& outcome) {
  if (outcome.ok()) return "{}";
  return "{\"error\":" + error_body_json(outcome) + "}";
}

}  // namespace billing::gateway
