// Turns the headers and body of a unary Connect request into what a handler
// gets: the call_context and the plain (decompressed) message bytes. Beast-free
// so every header rule is testable without a socket.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "gateway/connect_server.hpp"
#include "model/status.hpp"

namespace billing::gateway {

struct unary_call_plan {
  call_context context;
  std::string message;  // decompressed request message, still encoded in context.wire_codec
  bool gzip_response_allowed = false;
};

// Applies Connect-Protocol-Version, Connect-Timeout-Ms, Content-Encoding and
// Accept-Encoding. `headers` are lower-cased; `now` anchors the deadline.
// Errors are Connect statuses ready to send (invalid_argument for bad headers,
// unimplemented for an unknown encoding, resource_exhausted for a body that
// inflates past max_body_bytes, deadline_exceeded for a zero timeout).
result<unary_call_plan> plan_unary_call(const server_options& options, codec wire_codec,
                                        std::map<std::string, std::string> headers,
                                        std::string body, std::string peer,
                                        std::chrono::steady_clock::time_point now);

struct stream_call_plan {
  call_context context;
  std::string message;  // the request envelope's message, decompressed
  // Compress response messages with gzip (Connect-Accept-Encoding).
  bool gzip_messages = false;
};

// The streaming counterpart: Connect-Protocol-Version and Connect-Timeout-Ms
// as for unary calls, then the body as exactly one envelope whose compressed
// flag follows Connect-Content-Encoding (gzip or identity; others are
// unimplemented), and Connect-Accept-Encoding for the responses.
result<stream_call_plan> plan_stream_call(const server_options& options, codec wire_codec,
                                          std::map<std::string, std::string> headers,
                                          std::string body, std::string peer,
                                          std::chrono::steady_clock::time_point now);

}  // namespace billing::gateway
