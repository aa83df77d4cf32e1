#include "observability/trace.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

#include "observability/log.hpp"

namespace billing::observability {
namespace {

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zero(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '0'; });
}

}  // namespace

std::optional<trace_context> parse_traceparent(std::string_view header) {
  // version "-" trace-id "-" parent-id "-" trace-flags
  constexpr size_t kLength = 2 + 1 + 32 + 1 + 16 + 1 + 2;
  if (header.size() < kLength) return std::nullopt;
  const std::string_view version = header.substr(0, 2);
  if (!is_lower_hex(version) || version == "ff") return std::nullopt;
  if (version == "00" && header.size() != kLength) return std::nullopt;
  if (header.size() > kLength && header[kLength] != '-') return std::nullopt;
  if (header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
  const std::string_view trace_id = header.substr(3, 32);
  const std::string_view parent_id = header.substr(36, 16);
  const std::string_view flags = header.substr(53, 2);
  if (!is_lower_hex(trace_id) || !is_lower_hex(parent_id) || !is_lower_hex(flags)) {
    return std::nullopt;
  }
  if (all_zero(trace_id) || all_zero(parent_id)) return std::nullopt;
  const bool sampled = (std::stoi(std::string{flags}, nullptr, 16) & 1) != 0;
  return trace_context{std::string{trace_id}, std::string{parent_id}, sampled};
}

void log_call(std::string_view procedure, status_code code, std::chrono::nanoseconds took,
              std::string_view traceparent, const model::trace_parent& span) {
  const std::string duration_us =
      std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(took).count());
  const auto level = code == status_code::internal || code == status_code::data_loss ||
                             code == status_code::unavailable
                         ? log_level::warn
                         : log_level::info;
  const std::string_view code_name = to_string(code);
  const auto trace = parse_traceparent(traceparent);
  if (span.traced()) {
    write_log_line(level, "call",
                   {{"procedure", procedure},
                    {"code", code_name},
                    {"duration_us", duration_us},
                    {"trace_id", span.trace_id},
                    {"parent_id", trace ? std::string_view{trace->parent_id} : ""},
                    {"span_id", span.span_id},
                    {"sampled", "true"}});
    return;
  }
  if (!trace) {
    write_log_line(level, "call",
                   {{"procedure", procedure}, {"code", code_name}, {"duration_us", duration_us}});
    return;
  }
  const std::string span_id = new_span_id();
  write_log_line(level, "call",
                 {{"procedure", procedure},
                  {"code", code_name},
                  {"duration_us", duration_us},
                  {"trace_id", trace->trace_id},
                  {"parent_id", trace->parent_id},
                  {"span_id", span_id},
                  {"sampled", trace->sampled ? "true" : "false"}});
}

}  // namespace billing::observability
