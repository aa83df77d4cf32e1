// Store commits an actor waits for. The committer thread must not touch the
// actor's state, so it reports each outcome back as a message carrying the
// ticket handed out here; the actor's handler then runs the waiting
// completion on its own thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "model/status.hpp"

namespace billing::actors {

class commit_waiters {
 public:
  // Registers `done`; returns the ticket the outcome message must carry.
  uint64_t add(std::function<void(status)> done) {
    const uint64_t ticket = next_ticket_++;
    waiting_.emplace(ticket, std::move(done));
    return ticket;
  }

  // Runs (and forgets) the completion of `ticket` with the reported outcome.
  void complete(uint64_t ticket, uint8_t code, std::string message) {
    auto it = waiting_.find(ticket);
    if (it == waiting_.end()) return;
    auto done = std::move(it->second);
    waiting_.erase(it);
    done(status{static_cast<status_code>(code), std::move(message)});
  }

 private:
  uint64_t next_ticket_ = 1;
  std::map<uint64_t, std::function<void(status)>> waiting_;
};

}  // namespace billing::actors
