// The server span of each Connect call (README "Traces"): its ids are chosen
// when the call is planned, so that the handler's child spans (the actor hop,
// and below it the commits) can name it as their parent; the router records
// it when the call is answered (start_server_span in connect_server.hpp).
// Parent-based sampling, as OpenTelemetry's default sampler: a valid `traceparent` is continued
// when its sampled flag is set and not traced when it is clear; without one a new trace starts.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "gateway/connect_server.hpp"
#include "observability/span.hpp"

namespace billing::gateway {

// Sets context.tracer, .span and .parent_span_id from its traceparent header;
// leaves them empty when `tracer` is null or the caller's trace is unsampled.
void start_call_trace(call_context& context, const std::shared_ptr<observability::tracer>& tracer);

}  // namespace billing::gateway
