#include "observability/span.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <utility>

namespace billing::observability {
namespace {

uint64_t nonzero_random() {
  // Ids must be unique, not secret: a per-thread generator seeded once.
  thread_local std::mt19937_64 generator{std::random_device{}()};
  uint64_t id = 0;
  while (id == 0) id = generator();
  return id;
}

}  // namespace

tracer::tracer(size_t max_queue_spans, counter count)
    : max_queue_spans_(max_queue_spans), count_(std::move(count)) {}

void tracer::record(span_record span) {
  {
    std::lock_guard lock(mutex_);
    if (!closed_ && queue_.size() < max_queue_spans_) {
      queue_.push_back(std::move(span));
      spans_arrived_.notify_one();
      return;
    }
  }
  count(span_outcome::dropped, 1);
}

std::vector<span_record> tracer::take(size_t max, std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  spans_arrived_.wait_for(lock, wait, [&] { return closed_ || queue_.size() >= max; });
  const size_t n = std::min(max, queue_.size());
  std::vector<span_record> taken(std::make_move_iterator(queue_.begin()),
                                 std::make_move_iterator(queue_.begin() + static_cast<long>(n)));
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(n));
  return taken;
}

void tracer::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  spans_arrived_.notify_all();
}

bool tracer::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

size_t tracer::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void tracer::count(span_outcome outcome, uint64_t spans) const {
  if (count_ && spans > 0) count_(outcome, spans);
}

std::string new_trace_id() {
  return fmt::format("{:016x}{:016x}", nonzero_random(), nonzero_random());
}

std::string new_span_id() {
  return fmt::format("{:016x}", nonzero_random());
}

int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

span_timer span_timer::child(std::shared_ptr<tracer> sink, const model::trace_parent& parent,
                             std::string name) {
  if (!sink || !parent.traced()) return {};
  return with_ids(std::move(sink), {parent.trace_id, new_span_id()}, parent.span_id,
                  std::move(name), span_kind::internal);
}

span_timer span_timer::with_ids(std::shared_ptr<tracer> sink, model::trace_parent self,
                                std::string parent_span_id, std::string name, span_kind kind) {
  span_timer timer;
  if (!sink || !self.traced()) return timer;
  timer.sink_ = std::move(sink);
  timer.span_.context = std::move(self);
  timer.span_.parent_span_id = std::move(parent_span_id);
  timer.span_.name = std::move(name);
  timer.span_.kind = kind;
  timer.span_.start_unix_ns = unix_now_ns();
  return timer;
}

void span_timer::set(std::string key, attribute_value value) {
  if (recording()) span_.attributes.push_back({std::move(key), std::move(value)});
}

void span_timer::finish(bool error, std::string_view message) {
  if (!recording()) return;
  span_.end_unix_ns = unix_now_ns();
  span_.error = error;
  if (error) span_.status_message = std::string{message};
  auto sink = std::move(sink_);
  sink_.reset();
  sink->record(std::move(span_));
}

}  // namespace billing::observability
