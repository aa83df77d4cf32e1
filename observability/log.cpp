#include "observability/log.hpp"

#include <chrono>
#include <cstdio>

#include <fmt/chrono.h>

namespace billing::observability {
namespace {

std::string_view level_name(log_level level) {
  switch (level) {
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warn:
      return "warn";
    case log_level::error:
      return "error";
  }
  return "info";
}

}  // namespace

// Hand-written rather than pulling a JSON library in for one function: log
// lines only ever need string escaping (RFC 8259 section 7).
std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

void write_log_line(log_level level, std::string_view message,
                    std::initializer_list<log_field> fields) {
  const auto now =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  // One fprintf per line: stdio locks the stream, so lines never interleave.
  std::string line = fmt::format(R"({{"ts":"{:%Y-%m-%dT%H:%M:%S}Z","level":"{}","msg":"{}")", now,
                                 level_name(level), json_escape(message));
  for (const auto& field : fields) {
    line += fmt::format(R"(,"{}":"{}")", json_escape(field.key), json_escape(field.value));
  }
  line += '}';
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace billing::observability
