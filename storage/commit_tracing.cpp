#include "storage/commit_tracing.hpp"

#include <algorithm>

namespace billing::storage {

bool has_traces(std::span<const pending_commit> group) {
  return std::any_of(group.begin(), group.end(),
                     [](const pending_commit& commit) { return !commit.writes.traces().empty(); });
}

void record_commit_spans(observability::tracer& sink, std::span<const pending_commit> group,
                         const commit_group_timing& timing) {
  int64_t waiting_requests = 0;
  int64_t mutations = 0;
  for (const auto& commit : group) {
    waiting_requests += static_cast<int64_t>(commit.writes.traces().size());
    mutations += static_cast<int64_t>(commit.writes.mutation_count());
  }
  for (const auto& commit : group) {
    for (const auto& parent : commit.writes.traces()) {
      observability::span_record span;
      span.context = {parent.trace_id, observability::new_span_id()};
      span.parent_span_id = parent.span_id;
      span.name = "commit_group";
      span.start_unix_ns = timing.started_unix_ns;
      span.end_unix_ns = timing.ended_unix_ns;
      span.attributes = {
          {"db.system.name", std::string{"rocksdb"}},
          {"billing.commit_group.id", static_cast<int64_t>(timing.group_id)},
          {"billing.commit_group.write_sets", static_cast<int64_t>(group.size())},
          {"billing.commit_group.requests", waiting_requests},
          {"billing.commit_group.mutations", mutations},
          {"billing.commit.mutations", static_cast<int64_t>(commit.writes.mutation_count())},
      };
      span.error = !commit.outcome.ok();
      span.status_message = commit.outcome.message();
      if (timing.sync) {
        observability::span_record fsync;
        fsync.context = {parent.trace_id, observability::new_span_id()};
        fsync.parent_span_id = span.context.span_id;
        fsync.name = "wal_fsync";
        fsync.start_unix_ns = timing.sync->start_unix_ns;
        fsync.end_unix_ns = timing.sync->end_unix_ns;
        fsync.attributes = {
            {"db.system.name", std::string{"rocksdb"}},
            {"db.operation.name", std::string{"Write"}},
            {"billing.commit_group.id", static_cast<int64_t>(timing.group_id)},
            {"billing.wal.sync", true},
        };
        fsync.error = timing.sync->failed;
        if (fsync.error) fsync.status_message = commit.outcome.message();
        sink.record(std::move(fsync));
      }
      sink.record(std::move(span));
    }
  }
}

}  // namespace billing::storage
