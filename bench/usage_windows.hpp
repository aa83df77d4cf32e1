// The simulated usage windows both ingest load generators send (billing-loadgen
// to billingd, billing-pg-loadgen to PostgreSQL), so the two sides of a
// comparison carry exactly the same rows: which VM and customer a window
// belongs to, when it starts and what it measured.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "bench/stats.hpp"

namespace billing::bench {

constexpr int64_t nanos_per_minute = 60'000'000'000;
constexpr int64_t nanos_per_day = 1440 * nanos_per_minute;

// The shape of a load: `connections` simulated metald instances, each with
// `vms_per_connection` VMs taking turns, windows advancing minute by minute.
struct load_shape {
  int connections = 4;
  int batches = 100;
  int batch_size = 1000;
  int vms_per_connection = 100;
  int customers = 100;
  std::string run_tag = "run";

  int total_vms() const { return connections * vms_per_connection; }
  // A VM belongs to one customer, so a run can touch at most one customer per
  // VM; shapes asking for more customers are refused rather than silently
  // touching fewer than `customers`.
  bool every_customer_touched() const { return customers <= total_vms(); }
  uint64_t windows_per_connection() const {
    return static_cast<uint64_t>(batches) * static_cast<uint64_t>(batch_size);
  }
};

// The first window's start: `days_back` days before now, on a whole minute.
inline int64_t first_window_start(int days_back) {
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  return (now_ns - days_back * nanos_per_day) / nanos_per_minute * nanos_per_minute;
}

// Runs `run_connection(c)` for every connection on its own thread; returns
// their reports and the seconds they took together.
template <typename Report, typename RunConnection>
std::pair<std::vector<Report>, double> run_connections(int connections,
                                                       RunConnection run_connection) {
  std::vector<Report> reports(static_cast<size_t>(connections));
  std::vector<std::thread> threads;
  const auto started = std::chrono::steady_clock::now();
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] { reports[static_cast<size_t>(c)] = run_connection(c); });
  }
  for (auto& thread : threads) thread.join();
  return {std::move(reports),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()};
}

// Every report's `latencies_ms`, merged and sorted for percentile().
template <typename Report>
std::vector<double> sorted_latencies(const std::vector<Report>& reports) {
  std::vector<double> all;
  for (const auto& report : reports) {
    all.insert(all.end(), report.latencies_ms.begin(), report.latencies_ms.end());
  }
  std::sort(all.begin(), all.end());
  return all;
}

// A connection's VMs: their ids and their customers' ids, formatted once
// (formatting them per window was 40% of the client's instructions, taken
// from the server on a shared machine). Customers are assigned round-robin
// over all VMs of the run.
struct connection_vms {
  std::vector<std::string> vm_ids;
  std::vector<std::string> customer_ids;

  connection_vms(const load_shape& shape, int connection) {
    for (int vm = 0; vm < shape.vms_per_connection; ++vm) {
      const uint64_t global_vm =
          static_cast<uint64_t>(connection) * shape.vms_per_connection + static_cast<uint64_t>(vm);
      vm_ids.push_back(fmt::format("vm-{}-{}-{}", shape.run_tag, connection, vm));
      customer_ids.push_back(customer_id(shape, global_vm % shape.customers));
    }
  }

  static std::string customer_id(const load_shape& shape, uint64_t customer) {
    return fmt::format("cust-{}-{}", shape.run_tag, customer);
  }
};

// The `index`-th window of a connection: deterministic, plausible values that
// differ per window.
struct usage_window {
  uint64_t vm = 0;  // index into connection_vms
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  uint64_t cpu_time_nanos = 0;
  uint64_t memory_bytes_used = 0;
  uint64_t memory_bytes_peak = 0;
  uint64_t memory_bytes_seconds = 0;
  uint64_t disk_read_bytes = 0;
  uint64_t disk_write_bytes = 0;
  uint64_t disk_read_ops = 0;
  uint64_t disk_write_ops = 0;
  uint64_t network_rx_bytes = 0;
  uint64_t network_tx_bytes = 0;
};

inline usage_window window_at(const load_shape& shape, uint64_t index, int64_t base_ns) {
  usage_window window;
  window.vm = index % static_cast<uint64_t>(shape.vms_per_connection);
  const uint64_t minute = index / static_cast<uint64_t>(shape.vms_per_connection);
  window.start_ns = base_ns + static_cast<int64_t>(minute) * nanos_per_minute;
  window.end_ns = window.start_ns + nanos_per_minute;
  const uint64_t spread = (index * 2654435761u) % 1000;
  window.cpu_time_nanos = 30'000'000'000 + spread * 1'000'000;
  window.memory_bytes_used = (uint64_t{1} << 30) + spread * 4096;
  window.memory_bytes_peak = window.memory_bytes_used + 65536;
  window.memory_bytes_seconds = window.memory_bytes_used * 60;
  window.disk_read_bytes = spread * 4096;
  window.disk_write_bytes = spread * 8192;
  window.disk_read_ops = spread;
  window.disk_write_ops = spread * 2;
  window.network_rx_bytes = spread * 1500;
  window.network_tx_bytes = spread * 3000;
  return window;
}

// The lines bench scripts read from both loaders: the run's seconds, the
// accepted windows per second and the batch latency percentiles.
inline void print_throughput(uint64_t accepted, double seconds,
                             const std::vector<double>& sorted_latencies_ms) {
  fmt::print("seconds {:.3f}\nmetrics_per_second {:.0f}\n", seconds,
             static_cast<double>(accepted) / seconds);
  fmt::print("batch_latency_ms p50 {:.2f} p99 {:.2f} p999 {:.2f}\n",
             percentile(sorted_latencies_ms, 0.50), percentile(sorted_latencies_ms, 0.99),
             percentile(sorted_latencies_ms, 0.999));
}

}  // namespace billing::bench
