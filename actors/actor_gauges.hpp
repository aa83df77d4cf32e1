// Live counts the actors keep for /metrics. Owned by main, shared with the
// actors; atomics, because actors update them on scheduler threads while a
// scrape reads them on an io thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace billing::actors {

struct actor_gauges {
  std::atomic<int64_t> customer_ledgers{0};  // customer ledger actors alive
  std::atomic<int64_t> queued_parts{0};      // ingest parts waiting for a ledger's next commit
};

// Adds one to a gauge for as long as it lives (a ledger's lifetime), and
// keeps what it moved on another gauge in step; null gauges count nothing.
class gauge_share {
 public:
  gauge_share() = default;
  gauge_share(std::shared_ptr<actor_gauges> gauges, std::atomic<int64_t> actor_gauges::*counter)
      : gauges_(std::move(gauges)), counter_(counter) {
    if (gauges_) ++((*gauges_).*counter_);
  }
  ~gauge_share() {
    if (gauges_) --((*gauges_).*counter_);
  }
  gauge_share(const gauge_share&) = delete;
  gauge_share& operator=(const gauge_share&) = delete;
  gauge_share(gauge_share&& other) noexcept
      : gauges_(std::move(other.gauges_)), counter_(other.counter_) {}
  gauge_share& operator=(gauge_share&& other) noexcept {
    std::swap(gauges_, other.gauges_);
    std::swap(counter_, other.counter_);
    return *this;
  }

  // Adds `delta` to another gauge of the same set.
  void add(std::atomic<int64_t> actor_gauges::*counter, int64_t delta) const {
    if (gauges_) ((*gauges_).*counter) += delta;
  }

 private:
  std::shared_ptr<actor_gauges> gauges_;
  std::atomic<int64_t> actor_gauges::*counter_ = nullptr;
};

}  // namespace billing::actors
