// The spans of a group commit (storage/commit_tracing.hpp), from a real
// RocksDB write: each traced request waiting for the write gets its own
// commit_group span with a wal_fsync child.
#include <doctest/doctest.h>

#include <map>

#include "test_support.hpp"

using namespace billing;
using namespace billing::storage;
using namespace billing::storage::testing;

namespace {

const observability::span_attribute* find_attribute(const observability::span_record& span,
                                                    const std::string& key) {
  for (const auto& attribute : span.attributes) {
    if (attribute.key == key) return &attribute;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a traced commit records a commit_group span per waiting request and its fsync") {
  temp_dir dir;
  auto options = options_for(dir);
  auto spans = std::make_shared<observability::tracer>(100, nullptr);
  options.tracer = spans;
  auto store = open_store(options);

  const model::trace_parent first{observability::new_trace_id(), observability::new_span_id()};
  const model::trace_parent second{observability::new_trace_id(), observability::new_span_id()};
  write_set writes;
  writes.put_window(sample_window("cust-a", "eu-west-1", "vm-1", t0, 1));
  writes.add_trace(first);
  writes.add_trace(second);
  writes.add_trace({});  // an untraced request adds nothing
  REQUIRE(commit_and_wait(*store, std::move(writes)).ok());

  auto recorded = spans->take(100, std::chrono::milliseconds{0});
  REQUIRE(recorded.size() == 4);
  std::map<std::string, observability::span_record> commit_of_trace;
  for (const auto& span : recorded) {
    if (span.name == "commit_group") commit_of_trace[span.context.trace_id] = span;
  }
  REQUIRE(commit_of_trace.size() == 2);
  CHECK(commit_of_trace.at(first.trace_id).parent_span_id == first.span_id);
  CHECK(commit_of_trace.at(second.trace_id).parent_span_id == second.span_id);
  for (const auto& span : recorded) {
    CHECK(span.kind == observability::span_kind::internal);
    CHECK_FALSE(span.error);
    CHECK(span.end_unix_ns >= span.start_unix_ns);
    if (span.name != "wal_fsync") continue;
    // The fsync is a child of the commit span of its own trace, within it.
    const auto& commit = commit_of_trace.at(span.context.trace_id);
    CHECK(span.parent_span_id == commit.context.span_id);
    CHECK(span.start_unix_ns >= commit.start_unix_ns);
    CHECK(span.end_unix_ns <= commit.end_unix_ns);
    const auto* sync = find_attribute(span, "billing.wal.sync");
    REQUIRE(sync != nullptr);
    CHECK(std::get<bool>(sync->value));
  }
  const auto* requests =
      find_attribute(commit_of_trace.at(first.trace_id), "billing.commit_group.requests");
  REQUIRE(requests != nullptr);
  CHECK(std::get<int64_t>(requests->value) == 2);
  // Both copies describe the same group.
  CHECK(std::get<int64_t>(
            find_attribute(commit_of_trace.at(first.trace_id), "billing.commit_group.id")->value) ==
        std::get<int64_t>(
            find_attribute(commit_of_trace.at(second.trace_id), "billing.commit_group.id")->value));
}

TEST_CASE("an untraced commit records no span") {
  temp_dir dir;
  auto options = options_for(dir);
  auto spans = std::make_shared<observability::tracer>(100, nullptr);
  options.tracer = spans;
  auto store = open_store(options);
  write_set writes;
  writes.put_window(sample_window("cust-b", "eu-west-1", "vm-1", t0, 2));
  REQUIRE(commit_and_wait(*store, std::move(writes)).ok());
  CHECK(spans->queued() == 0);
}
