// Calls into the actors from a gateway handler: a short-lived bridge actor
// sends one request and completes a callback with the answer or a status.
// The bridge lives until the answer arrives or the call's deadline passes.
#pragma once

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <tuple>

#include "actors/errors.hpp"
#include "gateway/connect_server.hpp"
#include "model/status.hpp"

namespace billing::gateway {

// Time left until the call's deadline, at least 1 ms, as a CAF timeout.
inline caf::duration time_left(const call_context& context) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      context.deadline - std::chrono::steady_clock::now());
  return caf::duration{std::max(left, std::chrono::milliseconds{1})};
}

// The actor hop of a traced call (README "Traces"): a child span of the
// call's server span from sending `message` to the actors until their
// answer; its context travels with the message (batch_meta::trace,
// metald_op::trace) so the commit spans become its children. Not recording
// when the call is not traced.
inline observability::span_timer start_actor_hop(const call_context& context,
                                                 const std::string& message) {
  auto hop = observability::span_timer::child(context.tracer, context.span, "actor_hop " + message);
  hop.set("billing.actor.message", message);
  return hop;
}

// Ends the hop with the answer's outcome.
template <class Answer>
void finish_actor_hop(observability::span_timer& hop, const result<Answer>& answer) {
  hop.finish(!answer.ok(), answer.ok() ? std::string_view{} : answer.error().message());
}

// Sends `request...` to `target` and calls `done` (on an actor thread) with
// the typed answer. `Answer` is what the target's interface replies with.
template <class Answer, class Target, class... Request>
void ask(caf::actor_system& system, const Target& target, caf::duration timeout,
         std::function<void(result<Answer>)> done, Request... request) {
  auto message = std::make_shared<std::tuple<Request...>>(std::move(request)...);
  system.spawn([target, timeout, message, done = std::move(done)](caf::event_based_actor* self) {
    std::apply(
        [&](auto&... parts) {
          self->request(target, timeout, std::move(parts)...)
              .then([done](Answer& answer) { done(std::move(answer)); },
                    [done](caf::error& error) { done(actors::to_status(error)); });
        },
        *message);
  });
}

// Runs `work` (a callable returning result<Response>) on a detached actor,
// which has a thread of its own, and answers with its result: for work that
// blocks (compaction, backups, invoices) and must hold neither an io thread
// nor one of the actors' scheduler threads. The actor runs once and ends.
template <class Response, class Work>
void run_detached(caf::actor_system& system, responder<Response> respond, Work work) {
  system.spawn<caf::detached>(
      [respond = std::move(respond), work = std::move(work)]() mutable { respond(work()); });
}

}  // namespace billing::gateway
