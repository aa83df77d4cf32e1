// Spans for OpenTelemetry traces (README "Traces"). Whoever times a piece of
// work records a finished span_record into the process's tracer, a bounded
// queue that never waits: the OTLP exporter (observability/otlp) drains it on
// its own thread. Without --otlp-endpoint there is no tracer (a null
// shared_ptr) and nothing here runs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "model/status.hpp"
#include "model/trace_parent.hpp"

namespace billing::observability {

using attribute_value = std::variant<std::string, int64_t, bool>;

struct span_attribute {
  std::string key;
  attribute_value value;
};

// OTLP's Span.SpanKind numbers.
enum class span_kind : uint8_t { internal = 1, server = 2 };

struct span_record {
  model::trace_parent context;    // this span's trace id and span id
  std::string parent_span_id;     // "" for a root span
  bool parent_is_remote = false;  // the parent came in a traceparent header
  std::string name;
  span_kind kind = span_kind::internal;
  int64_t start_unix_ns = 0;
  int64_t end_unix_ns = 0;
  std::vector<span_attribute> attributes;
  bool error = false;  // OTLP status ERROR, else UNSET
  std::string status_message;
};

// How spans ended: handed to the exporter, or lost (queue full, export failed
// or rejected by the collector). For billing_trace_spans_total.
enum class span_outcome { exported, dropped };

class tracer {
 public:
  using counter = std::function<void(span_outcome, uint64_t spans)>;
  // `count` (may be null) is told of every span exported or dropped, on the
  // thread that decided it.
  tracer(size_t max_queue_spans, counter count);
  tracer(const tracer&) = delete;
  tracer& operator=(const tracer&) = delete;

  // Queues a finished span. Never waits on the exporter: past
  // max_queue_spans queued, or once closed, the span is dropped and counted.
  void record(span_record span);

  // The exporter's side: waits until `max` spans are queued, `wait` has
  // passed or the tracer is closed, then takes up to `max` of them (oldest
  // first). Empty only when nothing was queued in time.
  std::vector<span_record> take(size_t max, std::chrono::milliseconds wait);
  // Wakes take() at once; later records are dropped. What is queued stays
  // for the exporter's last take().
  void close();
  bool closed() const;
  size_t queued() const;

  // The exporter reports how its exports went.
  void count(span_outcome outcome, uint64_t spans) const;

 private:
  const size_t max_queue_spans_;
  const counter count_;
  mutable std::mutex mutex_;
  std::condition_variable spans_arrived_;
  std::deque<span_record> queue_;  // guarded by mutex_
  bool closed_ = false;            // guarded by mutex_
};

// New random ids in lowercase hex, never all zero (16 bytes, 8 bytes).
std::string new_trace_id();
std::string new_span_id();

int64_t unix_now_ns();

// A span being timed. Default-constructed (or started without a tracer or
// without a traced parent) it records nothing and costs nothing. Copyable so
// that it can ride in std::function callbacks; only finish() records.
class span_timer {
 public:
  span_timer() = default;
  // A child of `parent` in `parent`'s trace, started now.
  static span_timer child(std::shared_ptr<tracer> sink, const model::trace_parent& parent,
                          std::string name);
  // A span with its ids chosen by the caller (the server span of a call).
  static span_timer with_ids(std::shared_ptr<tracer> sink, model::trace_parent self,
                             std::string parent_span_id, std::string name, span_kind kind);

  bool recording() const { return sink_ != nullptr; }
  // What children of this span carry ({} when not recording).
  model::trace_parent context() const {
    return recording() ? span_.context : model::trace_parent{};
  }
  span_record& span() { return span_; }

  void set(std::string key, attribute_value value);
  // Ends the span now and records it; `error` marks it failed with `message`.
  // Later calls do nothing.
  void finish(bool error = false, std::string_view message = {});

 private:
  std::shared_ptr<tracer> sink_;
  span_record span_;
};

}  // namespace billing::observability
