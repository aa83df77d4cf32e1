// The span queue's bounds and the span timer (observability/span.hpp).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>

#include "observability/span.hpp"

using namespace billing;
using namespace billing::observability;

namespace {

struct counts {
  std::atomic<uint64_t> exported{0};
  std::atomic<uint64_t> dropped{0};
  tracer::counter counter() {
    return [this](span_outcome outcome, uint64_t n) {
      (outcome == span_outcome::exported ? exported : dropped) += n;
    };
  }
};

span_record named(std::string name) {
  span_record span;
  span.context = {new_trace_id(), new_span_id()};
  span.name = std::move(name);
  return span;
}

}  // namespace

TEST_CASE("the tracer holds at most max_queue_spans and counts every span it drops") {
  counts seen;
  tracer spans{3, seen.counter()};
  for (int i = 0; i < 5; ++i) spans.record(named("s" + std::to_string(i)));
  CHECK(spans.queued() == 3);
  CHECK(seen.dropped == 2);
  // Oldest first; take never hands out more than asked.
  auto first = spans.take(2, std::chrono::milliseconds{0});
  REQUIRE(first.size() == 2);
  CHECK(first[0].name == "s0");
  CHECK(first[1].name == "s1");
  spans.record(named("s5"));
  CHECK(spans.queued() == 2);
  CHECK(seen.dropped == 2);
}

TEST_CASE("take returns a partial batch once its wait is over, and at once when closed") {
  tracer spans{10, nullptr};
  CHECK(spans.take(5, std::chrono::milliseconds{1}).empty());
  spans.record(named("only"));
  CHECK(spans.take(5, std::chrono::milliseconds{1}).size() == 1);
  spans.record(named("left"));
  spans.close();
  // Closed: no wait, what was queued is still handed out, new spans are dropped.
  const auto started = std::chrono::steady_clock::now();
  CHECK(spans.take(5, std::chrono::hours{1}).size() == 1);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::minutes{1});
  spans.record(named("late"));
  CHECK(spans.queued() == 0);
}

TEST_CASE("ids are lowercase hex of the W3C lengths and not all zero") {
  for (int i = 0; i < 100; ++i) {
    const auto trace_id = new_trace_id();
    const auto span_id = new_span_id();
    CHECK(trace_id.size() == 32);
    CHECK(span_id.size() == 16);
    CHECK(trace_id.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(trace_id != std::string(32, '0'));
    CHECK(span_id != std::string(16, '0'));
  }
}

TEST_CASE("a child span continues its parent's trace and records once, when finished") {
  auto spans = std::make_shared<tracer>(10, nullptr);
  const model::trace_parent parent{new_trace_id(), new_span_id()};
  auto child = span_timer::child(spans, parent, "actor_hop ingest");
  REQUIRE(child.recording());
  CHECK(child.context().trace_id == parent.trace_id);
  CHECK(child.context().span_id != parent.span_id);
  child.set("billing.batch.windows", int64_t{3});
  CHECK(spans->queued() == 0);
  child.finish(true, "it failed");
  child.finish();
  auto recorded = spans->take(10, std::chrono::milliseconds{0});
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].parent_span_id == parent.span_id);
  CHECK(recorded[0].kind == span_kind::internal);
  CHECK(recorded[0].error);
  CHECK(recorded[0].status_message == "it failed");
  CHECK(recorded[0].end_unix_ns >= recorded[0].start_unix_ns);
  REQUIRE(recorded[0].attributes.size() == 1);
  CHECK(std::get<int64_t>(recorded[0].attributes[0].value) == 3);
}

TEST_CASE("without a tracer or a traced parent nothing is recorded") {
  auto spans = std::make_shared<tracer>(10, nullptr);
  auto untraced = span_timer::child(spans, {}, "x");
  CHECK_FALSE(untraced.recording());
  CHECK_FALSE(untraced.context().traced());
  untraced.finish();
  auto off = span_timer::child(nullptr, {new_trace_id(), new_span_id()}, "x");
  CHECK_FALSE(off.recording());
  off.finish();
  CHECK(spans->queued() == 0);
}
