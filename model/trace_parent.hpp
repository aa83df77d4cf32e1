// The span a piece of work is part of, as handed along with it (gateway to
// actors to the committer thread), so that the spans made further down are
// its children. Hex strings, as in W3C `traceparent`; empty when the work is
// not traced (tracing off, or the caller's trace is not sampled).
#pragma once

#include <string>

namespace billing::model {

struct trace_parent {
  std::string trace_id;  // 32 lowercase hex digits
  std::string span_id;   // 16 lowercase hex digits

  bool traced() const { return !trace_id.empty(); }
};

}  // namespace billing::model
