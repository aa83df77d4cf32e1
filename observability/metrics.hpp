// The service's Prometheus metrics (prometheus-cpp's registry and text
// serializer), served at GET /metrics. One instance per process, owned by
// main and handed to whoever records; every method is thread-safe. Metric
// values are observability only: no amount is ever computed from them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>
#include <string>
#include <string_view>

#include "model/ingest.hpp"
#include "model/status.hpp"

namespace prometheus {
class Registry;
}

namespace billing::observability {

// Values read when /metrics is scraped rather than pushed on every change.
struct scrape_gauges {
  uint64_t ledger_commits = 0;        // write sets committed
  uint64_t ledger_synced_writes = 0;  // RocksDB writes with a WAL fsync
  uint64_t calls_in_flight = 0;
  uint64_t open_streams = 0;       // live-usage subscribers
  uint64_t customer_actors = 0;    // customer ledger actors alive
  uint64_t queued_parts = 0;       // ingest parts waiting in customer ledgers for a commit
  uint64_t sst_bytes = 0;          // RocksDB live SST files
  uint64_t memtable_bytes = 0;     // RocksDB memtables
  uint64_t block_cache_bytes = 0;  // RocksDB block cache in use
  uint64_t estimated_windows = 0;  // raw windows stored (RocksDB's estimate)
  // The ledger refuses writes after a storage error (storage::write_health),
  // because its data volume is full; and that volume's free bytes.
  bool ledger_writes_paused = false;
  bool ledger_disk_full = false;
  uint64_t ledger_disk_free_bytes = 0;
  struct cluster_figures {
    int64_t peers_connected = 0;
    int64_t handoff_pending = 0;  // writes held for unreachable owners, not yet delivered
    uint64_t handoff_held = 0;    // since start
    uint64_t handoff_delivered = 0;
    uint64_t handover_customers = 0;  // customers moved to a new owner since start
    // More kinds of billing_cluster, by name (etcd mode: etcd_reachable, ...).
    std::vector<std::pair<std::string, int64_t>> more;
  };
  std::optional<cluster_figures> cluster;  // only when running as a cluster
};

class service_metrics {
 public:
  service_metrics();
  ~service_metrics();
  service_metrics(const service_metrics&) = delete;
  service_metrics& operator=(const service_metrics&) = delete;

  // One finished RPC: counted by procedure and Connect code, timed by procedure.
  void record_call(std::string_view procedure, status_code code, std::chrono::nanoseconds latency);
  // What one ingest request decided, item by item.
  void record_ingest(const model::ingest_report& report);
  // One synced group write to RocksDB (the WAL fsync dominates it).
  void record_synced_write(std::chrono::nanoseconds took);
  // Spans exported to the OTLP collector or dropped (0 creates the series).
  void record_trace_spans(bool exported, uint64_t spans);

  // Called at every scrape; set once at start-up.
  void set_scrape_source(std::function<scrape_gauges()> source);

  // The Prometheus text exposition format (version 0.0.4).
  std::string render() const;
  static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

 private:
  struct families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<families> families_;
};

}  // namespace billing::observability
