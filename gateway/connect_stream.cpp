#include "gateway/connect_stream.hpp"

#include <utility>

#include "gateway/connect_codec.hpp"
#include "gateway/connect_stream_codec.hpp"

namespace billing::gateway {

stream_channel::stream_channel(settings channel_settings, std::function<void()> wake_writer)
    : settings_(channel_settings), wake_writer_(std::move(wake_writer)) {}

stream_send_result stream_channel::send(std::string encoded_message) {
  uint8_t flags = 0;
  if (settings_.gzip_messages && encoded_message.size() >= settings_.gzip_min_bytes) {
    // On a zlib failure the message simply goes out uncompressed.
    if (auto compressed = gzip_compress(encoded_message); compressed.ok()) {
      encoded_message = std::move(compressed).value();
      flags |= envelope_compressed;
    }
  }
  std::string frame = encode_envelope(flags, encoded_message);
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return stream_send_result::closed;
    if (buffered_bytes_ > 0 && buffered_bytes_ + frame.size() > settings_.max_buffered_bytes) {
      full_reported_ = true;
      return stream_send_result::full;
    }
    buffered_bytes_ += frame.size();
    queue_.push_back(std::move(frame));
    wake = std::exchange(writer_waiting_, false);
  }
  if (wake && wake_writer_) wake_writer_();
  return stream_send_result::queued;
}

void stream_channel::finish(status outcome) {
  std::vector<std::function<void()>> callbacks;
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    const status_code code = outcome.code();
    outcome_ = std::move(outcome);
    callbacks = close_locked(code);
    wake = std::exchange(writer_waiting_, false);
  }
  if (wake && wake_writer_) wake_writer_();
  run(std::move(callbacks));
}

void stream_channel::abort(const status& why) {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mutex_);
    queue_.clear();
    buffered_bytes_ = 0;
    outcome_.reset();
    if (closed_) return;
    callbacks = close_locked(why.code());
  }
  run(std::move(callbacks));
}

bool stream_channel::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

void stream_channel::set_on_closed(std::function<void()> on_closed) {
  {
    std::lock_guard lock(mutex_);
    if (!closed_) {
      on_closed_ = std::move(on_closed);
      return;
    }
  }
  if (on_closed) on_closed();
}

void stream_channel::set_on_drained(std::function<void()> on_drained) {
  std::lock_guard lock(mutex_);
  if (!closed_) on_drained_ = std::move(on_drained);
}

void stream_channel::set_end_observer(std::function<void(status_code)> observer) {
  std::lock_guard lock(mutex_);
  if (!closed_) end_observer_ = std::move(observer);
}

stream_channel::pending stream_channel::take() {
  std::lock_guard lock(mutex_);
  pending taken;
  taken.frames.assign(std::make_move_iterator(queue_.begin()),
                      std::make_move_iterator(queue_.end()));
  queue_.clear();
  if (outcome_) {
    taken.end_frame = encode_envelope(envelope_end_stream, end_stream_json(*outcome_));
    outcome_.reset();
  }
  writer_waiting_ = taken.frames.empty() && !taken.end_frame && !closed_;
  return taken;
}

void stream_channel::written(uint64_t bytes) {
  std::function<void()> on_drained;
  {
    std::lock_guard lock(mutex_);
    buffered_bytes_ -= std::min(bytes, buffered_bytes_);
    if (buffered_bytes_ > 0 || !full_reported_) return;
    full_reported_ = false;
    on_drained = on_drained_;  // a copy: it may fire again
  }
  if (on_drained) on_drained();
}

uint64_t stream_channel::buffered_bytes() const {
  std::lock_guard lock(mutex_);
  return buffered_bytes_;
}

std::vector<std::function<void()>> stream_channel::close_locked(status_code code) {
  closed_ = true;
  std::vector<std::function<void()>> callbacks;
  if (auto observer = std::exchange(end_observer_, nullptr)) {
    callbacks.emplace_back([observer = std::move(observer), code] { observer(code); });
  }
  if (auto on_closed = std::exchange(on_closed_, nullptr)) {
    callbacks.push_back(std::move(on_closed));
  }
  // Released here, outside any callback, so what it captured is freed.
  callbacks.emplace_back([drained = std::exchange(on_drained_, nullptr)] {});
  return callbacks;
}

void stream_channel::run(std::vector<std::function<void()>> callbacks) {
  for (auto& callback : callbacks) callback();
}

}  // namespace billing::gateway
