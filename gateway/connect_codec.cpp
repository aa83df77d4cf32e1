#include "gateway/connect_codec.hpp"

#include <google/protobuf/util/json_util.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

namespace billing::gateway {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string lower_case(std::string_view text) {
  std::string lowered(text);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lowered;
}

// Length of the valid UTF-8 sequence starting at text[at], or 0 when the
// bytes there are not valid UTF-8 (overlong forms and surrogates included).
size_t utf8_sequence_length(std::string_view text, size_t at) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  size_t length = 0;
  unsigned char second_min = 0x80, second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;
    if (lead == 0xED) second_max = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;
    if (lead == 0xF4) second_max = 0x8F;
  } else {
    return 0;
  }
  if (at + length > text.size()) return 0;
  if (byte(at + 1) < second_min || byte(at + 1) > second_max) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(at + i) < 0x80 || byte(at + i) > 0xBF) return 0;
  }
  return length;
}

// Appends `text` as a JSON string literal. Invalid UTF-8 (error messages can
// quote client input) becomes U+FFFD so the body always parses.
void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex_digits[] = "0123456789abcdef";
  out.push_back('"');
  for (size_t at = 0; at < text.size();) {
    const auto c = static_cast<unsigned char>(text[at]);
    if (c >= 0x80) {
      if (const size_t length = utf8_sequence_length(text, at); length != 0) {
        out.append(text.substr(at, length));
        at += length;
      } else {
        out.append("\\ufffd");
        ++at;
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(hex_digits[c >> 4]);
          out.push_back(hex_digits[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++at;
  }
  out.push_back('"');
}

// Frees a zlib stream however the function using it returns.
struct inflate_stream {
  z_stream stream{};
  bool initialized = false;
  ~inflate_stream() {
    if (initialized) inflateEnd(&stream);
  }
};

struct deflate_stream {
  z_stream stream{};
  bool initialized = false;
  ~deflate_stream() {
    if (initialized) deflateEnd(&stream);
  }
};

}  // namespace

unsigned http_status_for(status_code code) {
  switch (code) {
    case status_code::canceled:
      return 499;
    case status_code::unknown:
      return 500;
    case status_code::invalid_argument:
      return 400;
    case status_code::deadline_exceeded:
      return 504;
    case status_code::not_found:
      return 404;
    case status_code::already_exists:
      return 409;
    case status_code::permission_denied:
      return 403;
    case status_code::resource_exhausted:
      return 429;
    case status_code::failed_precondition:
      return 400;
    case status_code::aborted:
      return 409;
    case status_code::out_of_range:
      return 400;
    case status_code::unimplemented:
      return 501;
    case status_code::internal:
      return 500;
    case status_code::unavailable:
      return 503;
    case status_code::data_loss:
      return 500;
    case status_code::unauthenticated:
      return 401;
    case status_code::ok:
      break;
  }
  return 500;
}

std::string error_body_json(const status& error) {
  const std::string_view code =
      error.code() == status_code::ok ? to_string(status_code::unknown) : to_string(error.code());
  std::string body = "{\"code\":";
  append_json_string(body, code);
  if (!error.message().empty()) {
    body.append(",\"message\":");
    append_json_string(body, error.message());
  }
  body.push_back('}');
  return body;
}

namespace {

// The lower-cased media type of a Content-Type, or nullopt when it carries a
// parameter other than charset=utf-8 (the only one Connect clients send, and
// JSON is UTF-8 by definition).
std::optional<std::string> media_type_of(std::string_view content_type) {
  const size_t semicolon = content_type.find(';');
  if (semicolon != std::string_view::npos) {
    const std::string parameter = lower_case(trim(content_type.substr(semicolon + 1)));
    if (parameter != "charset=utf-8" && parameter != "charset=\"utf-8\"") return std::nullopt;
  }
  return lower_case(trim(content_type.substr(0, semicolon)));
}

std::optional<codec> codec_named(std::optional<std::string> media_type, std::string_view proto_type,
                                 std::string_view json_type) {
  if (media_type == proto_type) return codec::proto;
  if (media_type == json_type) return codec::json;
  return std::nullopt;
}

}  // namespace

std::optional<codec> codec_for_content_type(std::string_view content_type) {
  return codec_named(media_type_of(content_type), "application/proto", "application/json");
}

std::string_view content_type_for(codec wire_codec) {
  return wire_codec == codec::json ? "application/json" : "application/proto";
}

std::optional<codec> codec_for_stream_content_type(std::string_view content_type) {
  return codec_named(media_type_of(content_type), "application/connect+proto",
                     "application/connect+json");
}

std::string_view stream_content_type_for(codec wire_codec) {
  return wire_codec == codec::json ? "application/connect+json" : "application/connect+proto";
}

result<std::chrono::milliseconds> parse_timeout_ms(std::string_view value) {
  // The protocol allows at most 10 digits, which also keeps the value in range.
  if (value.empty() || value.size() > 10 ||
      !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return status{status_code::invalid_argument,
                  "connect-timeout-ms must be 1 to 10 digits, got \"" + std::string(value) + "\""};
  }
  int64_t milliseconds = 0;
  for (char digit : value) milliseconds = milliseconds * 10 + (digit - '0');
  return std::chrono::milliseconds{milliseconds};
}

bool accepts_gzip(std::string_view accept_encoding) {
  while (!accept_encoding.empty()) {
    const size_t comma = accept_encoding.find(',');
    const std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding =
        comma == std::string_view::npos ? std::string_view{} : accept_encoding.substr(comma + 1);
    const size_t semicolon = item.find(';');
    if (lower_case(trim(item.substr(0, semicolon))) != "gzip") continue;
    if (semicolon == std::string_view::npos) return true;
    // "gzip;q=0" (or 0.0, 0.000) explicitly refuses gzip.
    const std::string parameter = lower_case(trim(item.substr(semicolon + 1)));
    if (!parameter.starts_with("q=")) return true;
    const std::string_view weight = std::string_view(parameter).substr(2);
    const bool zero = !weight.empty() && weight.front() == '0' &&
                      weight.find_first_not_of("0.") == std::string_view::npos;
    return !zero;
  }
  return false;
}

// A bounded inflate loop over zlib rather than Boost.Iostreams' gzip filter:
// we must stop the moment the output passes the limit (a gzip bomb expands
// ~1000:1), which a stream filter copying into a string cannot promise.
result<std::string> gunzip_bounded(std::string_view compressed, uint64_t max_output) {
  // Nothing to inflate: an empty message labelled gzip is still an empty message.
  if (compressed.empty()) return std::string{};
  inflate_stream zlib;
  // 15 window bits + 16: expect gzip framing, not raw zlib.
  if (inflateInit2(&zlib.stream, 15 + 16) != Z_OK) {
    return status{status_code::internal, "cannot initialize gzip decompression"};
  }
  zlib.initialized = true;

  std::string output;
  std::array<unsigned char, 16 * 1024> chunk;
  size_t fed = 0;  // bytes of `compressed` handed to zlib so far
  for (;;) {
    if (zlib.stream.avail_in == 0 && fed < compressed.size()) {
      const size_t piece =
          std::min<size_t>(compressed.size() - fed, std::numeric_limits<uInt>::max());
      zlib.stream.next_in =
          reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data() + fed));  // zlib API
      zlib.stream.avail_in = static_cast<uInt>(piece);
      fed += piece;
    }
    zlib.stream.next_out = chunk.data();
    zlib.stream.avail_out = static_cast<uInt>(chunk.size());
    const int rc = inflate(&zlib.stream, Z_NO_FLUSH);
    const size_t produced = chunk.size() - zlib.stream.avail_out;
    if (output.size() + produced > max_output) {
      return status{status_code::resource_exhausted,
                    "decompressed request body exceeds " + std::to_string(max_output) + " bytes"};
    }
    output.append(reinterpret_cast<const char*>(chunk.data()), produced);

    const bool input_left = zlib.stream.avail_in != 0 || fed < compressed.size();
    if (rc == Z_STREAM_END) {
      if (!input_left) return output;
      // RFC 1952 allows several gzip members back to back.
      if (inflateReset(&zlib.stream) != Z_OK) break;
      continue;
    }
    if (rc == Z_BUF_ERROR && !input_left) {
      return status{status_code::invalid_argument, "malformed gzip body: truncated"};
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
  }
  return status{status_code::invalid_argument,
                std::string("malformed gzip body: ") +
                    (zlib.stream.msg != nullptr ? zlib.stream.msg : "invalid data")};
}

result<std::string> gzip_compress(std::string_view plain) {
  if (plain.size() > std::numeric_limits<uInt>::max() / 2) {
    return status{status_code::internal, "body too large to compress"};
  }
  deflate_stream zlib;
  if (deflateInit2(&zlib.stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return status{status_code::internal, "cannot initialize gzip compression"};
  }
  zlib.initialized = true;
  std::string output(deflateBound(&zlib.stream, static_cast<uLong>(plain.size())), '\0');
  zlib.stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));  // zlib API
  zlib.stream.avail_in = static_cast<uInt>(plain.size());
  zlib.stream.next_out = reinterpret_cast<Bytef*>(output.data());
  zlib.stream.avail_out = static_cast<uInt>(output.size());
  if (deflate(&zlib.stream, Z_FINISH) != Z_STREAM_END) {
    return status{status_code::internal, "gzip compression failed"};
  }
  output.resize(zlib.stream.total_out);
  return output;
}

// --- declared in connect_server.hpp ---

const std::string& call_context::header(const std::string& lower_case_name) const {
  static const std::string absent;
  const auto found = headers.find(lower_case_name);
  return found == headers.end() ? absent : found->second;
}

status decode_message(codec wire_codec, const std::string& body,
                      google::protobuf::Message& message) {
  if (wire_codec == codec::proto) {
    if (!message.ParseFromString(body)) {
      return status{status_code::invalid_argument, "malformed protobuf body"};
    }
    return status::ok_status();
  }
  google::protobuf::util::JsonParseOptions options;
  // Newer clients may send fields this server does not know yet (connect-go
  // ignores them too); rejecting them would break rolling upgrades.
  options.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(body, &message, options);
  if (!parsed.ok()) {
    return status{status_code::invalid_argument,
                  "malformed JSON body: " + std::string(parsed.message())};
  }
  return status::ok_status();
}

result<std::string> encode_message(codec wire_codec, const google::protobuf::Message& message) {
  std::string encoded;
  if (wire_codec == codec::proto) {
    if (!message.SerializeToString(&encoded)) {
      return status{status_code::internal, "cannot serialize the response"};
    }
    return encoded;
  }
  const auto printed = google::protobuf::util::MessageToJsonString(message, &encoded);
  if (!printed.ok()) {
    return status{status_code::internal,
                  "cannot encode the response as JSON: " + std::string(printed.message())};
  }
  return encoded;
}

}  // namespace billing::gateway
