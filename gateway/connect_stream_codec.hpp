// The Connect streaming wire format without sockets: enveloped messages
// (1 flags byte, 4-byte big-endian length, payload) and the end-of-stream
// message. Beast-free, so every framing rule is testable on plain bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "model/status.hpp"

namespace billing::gateway {

// Envelope flags (connect-protocol.md): the payload is compressed with the
// stream's Connect-Content-Encoding; the envelope is the end-of-stream message.
inline constexpr uint8_t envelope_compressed = 0x01;
inline constexpr uint8_t envelope_end_stream = 0x02;
inline constexpr size_t envelope_prefix_bytes = 5;

struct envelope {
  uint8_t flags = 0;
  std::string payload;
};

// The wire bytes of one envelope.
std::string encode_envelope(uint8_t flags, std::string_view payload);

// Reads the envelope at the front of `bytes` and drops it from `bytes`.
// invalid_argument when the prefix or payload is cut short or a flag is
// unknown; resource_exhausted when the payload is longer than `max_payload`.
result<envelope> take_envelope(std::string_view& bytes, uint64_t max_payload);

// A server-streaming request body: exactly one message envelope, neither
// end-of-stream nor followed by more bytes.
result<envelope> parse_request_envelope(std::string_view body, uint64_t max_payload);

// The end-of-stream payload: {} for ok, {"error":{"code":...,"message":...}} otherwise.
std::string end_stream_json(const status& outcome);

}  // namespace billing::gateway
