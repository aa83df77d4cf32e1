#include "gateway/call_tracing.hpp"

#include <charconv>
#include <system_error>

#include "observability/trace.hpp"

namespace billing::gateway {
namespace {

struct host_port {
  std::string host;
  int64_t port = -1;  // -1: none given
};

// "host:port", "[v6]:port" or "host": brackets dropped.
host_port split_host_port(std::string_view text) {
  host_port split;
  const auto colon = text.rfind(':');
  const bool bracketed = text.starts_with('[');
  const auto close = text.find(']');
  if (colon != std::string_view::npos &&
      (!bracketed || (close != std::string_view::npos && colon > close))) {
    int64_t port = 0;
    const auto digits = text.substr(colon + 1);
    const auto parsed = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (parsed.ec == std::errc{} && parsed.ptr == digits.data() + digits.size()) split.port = port;
    text = text.substr(0, colon);
  }
  if (text.starts_with('[') && text.ends_with(']')) text = text.substr(1, text.size() - 2);
  split.host = std::string{text};
  return split;
}

bool is_server_fault(status_code code) {
  switch (code) {
    case status_code::unknown:
    case status_code::deadline_exceeded:
    case status_code::unimplemented:
    case status_code::internal:
    case status_code::unavailable:
    case status_code::data_loss:
      return true;
    default:
      return false;
  }
}

}  // namespace

void start_call_trace(call_context& context, const std::shared_ptr<observability::tracer>& tracer) {
  if (!tracer) return;
  const auto caller = observability::parse_traceparent(context.header("traceparent"));
  if (caller && !caller->sampled) return;
  context.tracer = tracer;
  context.span = {caller ? caller->trace_id : observability::new_trace_id(),
                  observability::new_span_id()};
  context.parent_span_id = caller ? caller->parent_id : "";
}

observability::span_timer start_server_span(const call_context& context, std::string_view path) {
  const std::string_view procedure = path.starts_with('/') ? path.substr(1) : path;
  auto span =
      observability::span_timer::with_ids(context.tracer, context.span, context.parent_span_id,
                                          std::string{procedure}, observability::span_kind::server);
  if (!span.recording()) return span;
  span.span().parent_is_remote = !context.parent_span_id.empty();
  const auto slash = procedure.rfind('/');
  span.set("rpc.system", std::string{"connect_rpc"});
  span.set("rpc.service", std::string{procedure.substr(0, slash)});
  span.set("rpc.method",
           std::string{slash == std::string_view::npos ? procedure : procedure.substr(slash + 1)});
  const auto server = split_host_port(context.header("host"));
  if (!server.host.empty()) span.set("server.address", server.host);
  if (server.port >= 0) span.set("server.port", server.port);
  const auto peer = split_host_port(context.peer);
  span.set("network.peer.address", peer.host);
  if (peer.port >= 0) span.set("network.peer.port", peer.port);
  span.set("client.address", peer.host);
  span.set("network.transport", std::string{"tcp"});
  span.set("network.protocol.name", std::string{"http"});
  span.set("network.protocol.version", std::string{"1.1"});
  span.set("billing.wire_codec", std::string{context.wire_codec == codec::json ? "json" : "proto"});
  return span;
}

void finish_server_span(observability::span_timer& span, status_code code,
                        std::string_view message) {
  if (!span.recording()) return;
  if (code != status_code::ok) span.set("rpc.connect_rpc.error_code", std::string{to_string(code)});
  span.finish(is_server_fault(code), message);
}

}  // namespace billing::gateway
