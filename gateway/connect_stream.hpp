// The byte-level outbound side of one server-streaming call, shared by the
// handler (through stream_sink, on any thread) and the HTTP session that
// writes it (on its strand). Beast-free, so its queueing and backpressure
// rules are testable without sockets.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "model/status.hpp"

namespace billing::gateway {

enum class stream_send_result {
  queued,  // the message will be written, in order
  full,    // too many bytes wait unwritten: not queued; retry after on_drained
  closed,  // the stream has ended; nothing more is sent
};

class stream_channel {
 public:
  struct settings {
    // Bytes of message envelopes queued but not yet written to the socket
    // beyond which send() answers full. A message is always accepted into
    // an empty queue, so one larger than this can still be sent.
    uint64_t max_buffered_bytes = uint64_t{1} << 20;
    // Compress messages of at least gzip_min_bytes with gzip (the client
    // sent Connect-Accept-Encoding: gzip and the response says so).
    bool gzip_messages = false;
    size_t gzip_min_bytes = 1024;
  };

  // `wake_writer` is called (outside the channel's lock, on the producer's
  // thread) when the writer found nothing to write and something arrived.
  stream_channel(settings channel_settings, std::function<void()> wake_writer);
  stream_channel(const stream_channel&) = delete;
  stream_channel& operator=(const stream_channel&) = delete;

  // --- producer side: any thread ---

  // Envelopes (and maybe compresses) one encoded message and queues it.
  stream_send_result send(std::string encoded_message);
  // Ends the stream with `outcome` in the end-of-stream message, after the
  // messages already queued. Only the first finish (or abort) counts.
  void finish(status outcome);
  bool closed() const;
  // Called once when the stream ends for any reason; at once (on the caller's
  // thread) when it has already ended. Callbacks run outside the channel's
  // lock and are released once the stream ends, which breaks any cycle
  // through a callback that captured the sink.
  void set_on_closed(std::function<void()> on_closed);
  // Called each time the unwritten bytes drop to zero after send() said full.
  void set_on_drained(std::function<void()> on_drained);
  // For the router: the stream's final code (ok, the finish code, or
  // canceled when the connection went away first), once.
  void set_end_observer(std::function<void(status_code)> observer);

  // --- writer side: the session's strand ---

  struct pending {
    std::vector<std::string> frames;       // message envelopes, in order
    std::optional<std::string> end_frame;  // the end-of-stream envelope, after them
  };
  // Hands over what is queued. When nothing is, the next send or finish
  // calls wake_writer.
  pending take();
  // `bytes` of message envelopes reached the socket.
  void written(uint64_t bytes);
  // The connection is gone before the end-of-stream was written: closes
  // without one and drops what is queued.
  void abort(const status& why);

  uint64_t buffered_bytes() const;

 private:
  // Closes the stream under the lock; returns the callbacks to run after it.
  std::vector<std::function<void()>> close_locked(status_code code);
  void run(std::vector<std::function<void()>> callbacks);

  const settings settings_;
  const std::function<void()> wake_writer_;

  mutable std::mutex mutex_;
  std::deque<std::string> queue_;
  uint64_t buffered_bytes_ = 0;  // queued plus handed to the writer, not yet written
  bool closed_ = false;
  std::optional<status> outcome_;  // set by finish(); its end frame not yet taken
  bool writer_waiting_ = false;
  bool full_reported_ = false;
  std::function<void()> on_closed_;
  std::function<void()> on_drained_;
  std::function<void(status_code)> end_observer_;
};

}  // namespace billing::gateway
