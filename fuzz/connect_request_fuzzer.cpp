// Fuzzes what the gateway does with untrusted request bytes before a handler
// sees them: header planning (Connect-Protocol-Version, Connect-Timeout-Ms,
// Content-Encoding with the bounded gunzip; for streaming calls the request
// envelope and Connect-Content-Encoding) and message decoding in both codecs
// into the largest request message. Nothing may crash, hang, read out
// of bounds or inflate past the limit.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "billing/v1/billing.pb.h"
#include "gateway/connect_call.hpp"
#include "gateway/connect_codec.hpp"

namespace {

constexpr uint64_t max_body_bytes = 64 * 1024;

// The first bytes choose the codec and the header values; the rest is the body.
std::string take_line(const uint8_t*& data, size_t& size) {
  std::string line;
  while (size > 0 && *data != '\n' && line.size() < 64) {
    line.push_back(static_cast<char>(*data));
    ++data;
    --size;
  }
  if (size > 0 && *data == '\n') {
    ++data;
    --size;
  }
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace billing::gateway;
  if (size < 1) return 0;
  const codec wire_codec = (data[0] & 1) != 0 ? codec::json : codec::proto;
  const bool gzip = (data[0] & 2) != 0;
  const bool streaming = (data[0] & 4) != 0;
  ++data;
  --size;
  std::map<std::string, std::string> headers;
  headers["connect-protocol-version"] = take_line(data, size);
  headers["connect-timeout-ms"] = take_line(data, size);
  headers["accept-encoding"] = take_line(data, size);
  if (gzip) headers[streaming ? "connect-content-encoding" : "content-encoding"] = "gzip";
  server_options options;
  options.max_body_bytes = max_body_bytes;
  std::string body(reinterpret_cast<const char*>(data), size);
  const auto now = std::chrono::steady_clock::now();
  auto message_of = [](auto plan) -> billing::result<std::string> {
    if (!plan.ok()) return plan.error();
    return std::move(plan.value().message);
  };
  auto message = streaming ? message_of(plan_stream_call(options, wire_codec, std::move(headers),
                                                         std::move(body), "fuzz", now))
                           : message_of(plan_unary_call(options, wire_codec, std::move(headers),
                                                        std::move(body), "fuzz", now));
  if (!message.ok()) {
    (void)error_body_json(message.error());
    return 0;
  }
  if (message.value().size() > max_body_bytes) __builtin_trap();
  billing::v1::SendMetricsBatchRequest request;
  if (decode_message(wire_codec, message.value(), request).ok()) {
    auto encoded = encode_message(wire_codec, request);
    (void)encoded;
  }
  return 0;
}
