// State shared by the server, its sessions and the responders handed to
// handlers. Owned by shared_ptr: a responder may outlive the server (an actor
// answers after shutdown) and must still find something valid to talk to.
// Internal to the gateway.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "gateway/connect_server.hpp"

namespace billing::gateway {

class http_session;

struct server_state {
  server_state(server_options server_options, connect_router server_router)
      : options(std::move(server_options)), router(std::move(server_router)) {}

  const server_options options;
  const connect_router router;

  // Calls dispatched to a handler whose responder has not been called yet.
  std::atomic<uint64_t> in_flight{0};
  // Calls dispatched whose HTTP response is not written yet; stop() waits for
  // these too, or a drained call's answer could be cut off by the final close.
  std::atomic<uint64_t> unsettled_calls{0};
  // Server streams whose end-of-stream is not written yet (they also count
  // in unsettled_calls while open).
  std::atomic<uint64_t> open_streams{0};
  // Set by stop(): sessions answer what they hold, then close.
  std::atomic<bool> draining{false};

  // Handler threads post completions to session strands only under this lock
  // and only while completions_open; stop() clears it before the io_context
  // goes away, so a late responder never touches a dead executor.
  std::mutex completion_mutex;
  bool completions_open = true;

  // Live sessions, so stop() can drain and close them.
  uint64_t add_session(std::weak_ptr<http_session> session) {
    std::lock_guard lock(sessions_mutex_);
    const uint64_t id = next_session_id_++;
    sessions_.emplace(id, std::move(session));
    return id;
  }
  void remove_session(uint64_t id) {
    std::lock_guard lock(sessions_mutex_);
    sessions_.erase(id);
  }
  std::vector<std::shared_ptr<http_session>> live_sessions() {
    std::vector<std::shared_ptr<http_session>> live;
    std::lock_guard lock(sessions_mutex_);
    for (const auto& [id, weak] : sessions_) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
    return live;
  }
  size_t session_count() {
    std::lock_guard lock(sessions_mutex_);
    return sessions_.size();
  }

 private:
  std::mutex sessions_mutex_;
  std::map<uint64_t, std::weak_ptr<http_session>> sessions_;
  uint64_t next_session_id_ = 0;
};

// Counts one unit in a counter for as long as it lives.
class counted_token {
 public:
  explicit counted_token(std::atomic<uint64_t>& counter) : counter_(&counter) { ++*counter_; }
  ~counted_token() { --*counter_; }
  counted_token(const counted_token&) = delete;
  counted_token& operator=(const counted_token&) = delete;

 private:
  std::atomic<uint64_t>* counter_;
};

}  // namespace billing::gateway
