// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent`
// header a caller sends, so that our log lines of its call carry its trace id
// and can be joined with the caller's spans.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "model/status.hpp"
#include "model/trace_parent.hpp"
#include "observability/span.hpp"

namespace billing::observability {

struct trace_context {
  std::string trace_id;   // 32 lowercase hex digits, not all zero
  std::string parent_id;  // 16 lowercase hex digits, not all zero: the caller's span
  bool sampled = false;   // trace-flags bit 0
};

// Parses `traceparent`; nullopt when absent or invalid (then the call is
// simply not part of a trace, as the specification asks). Version 00 must be
// exactly 55 characters; a later version may append fields after a '-'.
std::optional<trace_context> parse_traceparent(std::string_view header);

// Logs one finished call as a JSON line: procedure, code, duration, and, when
// `traceparent` is valid, trace_id, parent_id (the caller's span), span_id
// and sampled. `span` is the call's exported server span when it is traced
// (then its ids are logged, also for a trace it started); otherwise span_id
// is a new id of our own.
void log_call(std::string_view procedure, status_code code, std::chrono::nanoseconds took,
              std::string_view traceparent, const model::trace_parent& span = {});

}  // namespace billing::observability
