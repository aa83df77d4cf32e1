// The Connect protocol's wire rules that need no sockets: status-to-HTTP
// mapping, the JSON error body, content types, timeouts, and gzip. Kept free
// of Beast so it is cheap to compile and test in isolation.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/connect_server.hpp"
#include "model/status.hpp"

namespace billing::gateway {

// The HTTP status a Connect error with `code` is sent with (connect-protocol.md).
// `ok` is not an error code; a handler failing with it is reported as unknown.
unsigned http_status_for(status_code code);

// The unary Connect error body: {"code":"...","message":"..."}; the message is
// left out when empty. Always valid JSON, whatever bytes the message holds.
std::string error_body_json(const status& error);

// The codec of a unary request's Content-Type ("application/proto",
// "application/json", optionally with "; charset=utf-8"), or nullopt.
std::optional<codec> codec_for_content_type(std::string_view content_type);
std::string_view content_type_for(codec wire_codec);
// What the server accepts, for the Accept-Post header of a 415 answer.
inline constexpr std::string_view supported_content_types = "application/proto, application/json";

// The same for streaming requests: "application/connect+proto" and
// "application/connect+json" (optionally with "; charset=utf-8").
std::optional<codec> codec_for_stream_content_type(std::string_view content_type);
std::string_view stream_content_type_for(codec wire_codec);
inline constexpr std::string_view supported_stream_content_types =
    "application/connect+proto, application/connect+json";

// Connect-Timeout-Ms: 1 to 10 ASCII digits; anything else is invalid_argument.
result<std::chrono::milliseconds> parse_timeout_ms(std::string_view value);

// Whether an Accept-Encoding value admits gzip (a "gzip" token without q=0).
bool accepts_gzip(std::string_view accept_encoding);

// Decompresses a gzip body, failing with resource_exhausted as soon as the
// output would exceed `max_output` bytes (a small body can inflate to
// gigabytes) and with invalid_argument when the data is not valid gzip.
result<std::string> gunzip_bounded(std::string_view compressed, uint64_t max_output);
// Compresses with gzip framing; internal on a zlib failure.
result<std::string> gzip_compress(std::string_view plain);

}  // namespace billing::gateway
