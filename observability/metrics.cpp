#include "observability/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <mutex>

namespace billing::observability {
namespace {

std::string_view reason_label(model::reject_reason reason) {
  switch (reason) {
    case model::reject_reason::none:
      return "none";
    case model::reject_reason::missing_id:
      return "missing_id";
    case model::reject_reason::invalid_id:
      return "invalid_id";
    case model::reject_reason::invalid_window:
      return "invalid_window";
    case model::reject_reason::timestamp_out_of_range:
      return "timestamp_out_of_range";
    case model::reject_reason::implausible_value:
      return "implausible_value";
    case model::reject_reason::region_mismatch:
      return "region_mismatch";
    case model::reject_reason::unknown_region:
      return "unknown_region";
    case model::reject_reason::conflicting_duplicate:
      return "conflicting_duplicate";
    case model::reject_reason::total_out_of_range:
      return "total_out_of_range";
  }
  return "unknown";
}

// Seconds; from a cached duplicate (sub-millisecond) to a call near its deadline.
const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return buckets;
}

}  // namespace

struct service_metrics::families {
  explicit families(prometheus::Registry& registry)
      : calls(prometheus::BuildCounter()
                  .Name("billing_rpc_calls_total")
                  .Help("Finished Connect calls by procedure and code")
                  .Register(registry)),
        call_seconds(prometheus::BuildHistogram()
                         .Name("billing_rpc_duration_seconds")
                         .Help("Connect call latency by procedure, from decoded request to answer")
                         .Register(registry)),
        windows(prometheus::BuildCounter()
                    .Name("billing_ingest_windows_total")
                    .Help("Ingested windows by outcome (accepted, duplicate, rejected)")
                    .Register(registry)),
        rejections(prometheus::BuildCounter()
                       .Name("billing_ingest_rejections_total")
                       .Help("Rejected windows by reason")
                       .Register(registry)),
        ledger_commits(prometheus::BuildGauge()
                           .Name("billing_ledger_commits")
                           .Help("Write sets committed to RocksDB since start")
                           .Register(registry)),
        ledger_synced_writes(
            prometheus::BuildGauge()
                .Name("billing_ledger_synced_writes")
                .Help("RocksDB writes with a WAL fsync since start (group commits)")
                .Register(registry)),
        calls_in_flight(prometheus::BuildGauge()
                            .Name("billing_rpc_calls_in_flight")
                            .Help("Connect calls being handled")
                            .Register(registry)),
        sync_seconds(prometheus::BuildHistogram()
                         .Name("billing_ledger_sync_seconds")
                         .Help("Duration of each synced group write to RocksDB (WAL fsync)")
                         .Register(registry)),
        state(prometheus::BuildGauge()
                  .Name("billing_actors")
                  .Help("Actor state: customer ledgers alive, ingest parts queued in them")
                  .Register(registry)),
        rocksdb_bytes(prometheus::BuildGauge()
                          .Name("billing_rocksdb_bytes")
                          .Help("RocksDB memory and disk: live SST files, memtables, block cache")
                          .Register(registry)),
        estimated_windows(prometheus::BuildGauge()
                              .Name("billing_rocksdb_estimated_windows")
                              .Help("Raw windows stored, as RocksDB estimates it")
                              .Register(registry)),
        writes_paused(prometheus::BuildGauge()
                          .Name("billing_ledger_writes_paused")
                          .Help("1 while the ledger refuses writes after a storage error (ingest "
                                "answers resource_exhausted or unavailable), else 0")
                          .Register(registry)),
        disk_full(prometheus::BuildGauge()
                      .Name("billing_ledger_disk_full")
                      .Help("1 while writes are paused because the data volume is full, else 0")
                      .Register(registry)),
        disk_free_bytes(prometheus::BuildGauge()
                            .Name("billing_ledger_disk_free_bytes")
                            .Help("Bytes free on the ledger's data volume")
                            .Register(registry)),
        open_streams(prometheus::BuildGauge()
                         .Name("billing_stream_subscribers")
                         .Help("Open server streams (StreamLiveUsage subscribers)")
                         .Register(registry)),
        trace_spans(prometheus::BuildCounter()
                        .Name("billing_trace_spans_total")
                        .Help("Finished spans exported to the OTLP collector or dropped (queue "
                              "full, collector slow, down or refusing)")
                        .Register(registry)),
        cluster(prometheus::BuildGauge()
                    .Name("billing_cluster")
                    .Help("Cluster: peers connected; writes held for unreachable owners "
                          "(pending now, held and delivered since start); customers handed over")
                    .Register(registry)) {}

  prometheus::Family<prometheus::Counter>& calls;
  prometheus::Family<prometheus::Histogram>& call_seconds;
  prometheus::Family<prometheus::Counter>& windows;
  prometheus::Family<prometheus::Counter>& rejections;
  prometheus::Family<prometheus::Gauge>& ledger_commits;
  prometheus::Family<prometheus::Gauge>& ledger_synced_writes;
  prometheus::Family<prometheus::Gauge>& calls_in_flight;
  prometheus::Family<prometheus::Histogram>& sync_seconds;
  prometheus::Family<prometheus::Gauge>& state;
  prometheus::Family<prometheus::Gauge>& rocksdb_bytes;
  prometheus::Family<prometheus::Gauge>& estimated_windows;
  prometheus::Family<prometheus::Gauge>& writes_paused;
  prometheus::Family<prometheus::Gauge>& disk_full;
  prometheus::Family<prometheus::Gauge>& disk_free_bytes;
  prometheus::Family<prometheus::Gauge>& open_streams;
  prometheus::Family<prometheus::Counter>& trace_spans;
  prometheus::Family<prometheus::Gauge>& cluster;

  std::mutex scrape_mutex;
  std::function<scrape_gauges()> scrape_source;  // guarded by scrape_mutex
};

service_metrics::service_metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      families_(std::make_unique<families>(*registry_)) {}

service_metrics::~service_metrics() = default;

void service_metrics::record_call(std::string_view procedure, status_code code,
                                  std::chrono::nanoseconds latency) {
  const std::string name(procedure);
  families_->calls.Add({{"procedure", name}, {"code", std::string(to_string(code))}}).Increment();
  families_->call_seconds.Add({{"procedure", name}}, latency_buckets())
      .Observe(std::chrono::duration<double>(latency).count());
}

void service_metrics::record_synced_write(std::chrono::nanoseconds took) {
  families_->sync_seconds.Add({}, latency_buckets())
      .Observe(std::chrono::duration<double>(took).count());
}

void service_metrics::record_ingest(const model::ingest_report& report) {
  std::array<uint64_t, 4> by_status{};
  for (const auto& outcome : report.outcomes) {
    ++by_status[static_cast<size_t>(outcome.status)];
    if (outcome.status == model::item_status::rejected) {
      families_->rejections.Add({{"reason", std::string(reason_label(outcome.reason))}})
          .Increment();
    }
  }
  families_->windows.Add({{"outcome", "accepted"}})
      .Increment(static_cast<double>(by_status[static_cast<size_t>(model::item_status::accepted)]));
  families_->windows.Add({{"outcome", "duplicate"}})
      .Increment(
          static_cast<double>(by_status[static_cast<size_t>(model::item_status::duplicate)]));
  families_->windows.Add({{"outcome", "rejected"}})
      .Increment(static_cast<double>(by_status[static_cast<size_t>(model::item_status::rejected)]));
}

void service_metrics::record_trace_spans(bool exported, uint64_t spans) {
  families_->trace_spans.Add({{"outcome", exported ? "exported" : "dropped"}})
      .Increment(static_cast<double>(spans));
}

void service_metrics::set_scrape_source(std::function<scrape_gauges()> source) {
  std::lock_guard lock(families_->scrape_mutex);
  families_->scrape_source = std::move(source);
}

std::string service_metrics::render() const {
  {
    std::lock_guard lock(families_->scrape_mutex);
    if (families_->scrape_source) {
      const scrape_gauges now = families_->scrape_source();
      families_->ledger_commits.Add({}).Set(static_cast<double>(now.ledger_commits));
      families_->ledger_synced_writes.Add({}).Set(static_cast<double>(now.ledger_synced_writes));
      families_->calls_in_flight.Add({}).Set(static_cast<double>(now.calls_in_flight));
      families_->open_streams.Add({}).Set(static_cast<double>(now.open_streams));
      families_->state.Add({{"kind", "customer_ledgers"}})
          .Set(static_cast<double>(now.customer_actors));
      families_->state.Add({{"kind", "queued_parts"}}).Set(static_cast<double>(now.queued_parts));
      families_->rocksdb_bytes.Add({{"kind", "sst"}}).Set(static_cast<double>(now.sst_bytes));
      families_->rocksdb_bytes.Add({{"kind", "memtable"}})
          .Set(static_cast<double>(now.memtable_bytes));
      families_->rocksdb_bytes.Add({{"kind", "block_cache"}})
          .Set(static_cast<double>(now.block_cache_bytes));
      families_->estimated_windows.Add({}).Set(static_cast<double>(now.estimated_windows));
      families_->writes_paused.Add({}).Set(now.ledger_writes_paused ? 1 : 0);
      families_->disk_full.Add({}).Set(now.ledger_disk_full ? 1 : 0);
      families_->disk_free_bytes.Add({}).Set(static_cast<double>(now.ledger_disk_free_bytes));
      if (now.cluster) {
        families_->cluster.Add({{"kind", "peers_connected"}})
            .Set(static_cast<double>(now.cluster->peers_connected));
        families_->cluster.Add({{"kind", "handoff_pending"}})
            .Set(static_cast<double>(now.cluster->handoff_pending));
        families_->cluster.Add({{"kind", "handoff_held"}})
            .Set(static_cast<double>(now.cluster->handoff_held));
        families_->cluster.Add({{"kind", "handoff_delivered"}})
            .Set(static_cast<double>(now.cluster->handoff_delivered));
        families_->cluster.Add({{"kind", "handover_customers"}})
            .Set(static_cast<double>(now.cluster->handover_customers));
        for (const auto& [kind, value] : now.cluster->more) {
          families_->cluster.Add({{"kind", kind}}).Set(static_cast<double>(value));
        }
      }
    }
  }
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace billing::observability
