// Structured logs: one JSON object per line on stderr, so that log shippers
// parse them without patterns. Messages are formatted with fmt.
#pragma once

#include <fmt/format.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace billing::observability {

enum class log_level { debug, info, warn, error };

// A field of a log line besides ts, level and msg (e.g. trace_id).
struct log_field {
  std::string_view key;
  std::string_view value;
};

void write_log_line(log_level level, std::string_view message,
                    std::initializer_list<log_field> fields = {});

// Escapes `text` for use inside a JSON string literal.
std::string json_escape(std::string_view text);

template <class... Args>
void log_info(fmt::format_string<Args...> format, Args&&... args) {
  write_log_line(log_level::info, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void log_warn(fmt::format_string<Args...> format, Args&&... args) {
  write_log_line(log_level::warn, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void log_error(fmt::format_string<Args...> format, Args&&... args) {
  write_log_line(log_level::error, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace billing::observability
