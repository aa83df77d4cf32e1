#include "observability/metrics.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace billing;
using namespace billing::observability;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST_CASE("calls are counted by procedure and code and timed in a histogram") {
  service_metrics metrics;
  const std::string procedure = "/billing.v1.BillingCollectorService/SendMetricsBatch";
  metrics.record_call(procedure, status_code::ok, std::chrono::milliseconds(3));
  metrics.record_call(procedure, status_code::ok, std::chrono::milliseconds(30));
  metrics.record_call(procedure, status_code::invalid_argument, std::chrono::microseconds(200));
  const std::string text = metrics.render();
  CHECK(has_line(text, "billing_rpc_calls_total{code=\"ok\",procedure=\"" + procedure + "\"} 2"));
  CHECK(has_line(text, "billing_rpc_calls_total{code=\"invalid_argument\",procedure=\"" +
                           procedure + "\"} 1"));
  CHECK(has_line(text, "billing_rpc_duration_seconds_count{procedure=\"" + procedure + "\"} 3"));
  CHECK(has_line(
      text, "billing_rpc_duration_seconds_bucket{procedure=\"" + procedure + "\",le=\"0.005\"} 2"));
  CHECK(text.find("# TYPE billing_rpc_duration_seconds histogram") != std::string::npos);
}

TEST_CASE("ingest outcomes are counted, rejections by reason") {
  service_metrics metrics;
  model::ingest_report report;
  report.outcomes = {
      model::item_outcome::accepted(0), model::item_outcome::accepted(1),
      model::item_outcome::duplicate(2),
      model::item_outcome::rejected(3, model::reject_reason::implausible_value, "x")};
  metrics.record_ingest(report);
  const std::string text = metrics.render();
  CHECK(has_line(text, "billing_ingest_windows_total{outcome=\"accepted\"} 2"));
  CHECK(has_line(text, "billing_ingest_windows_total{outcome=\"duplicate\"} 1"));
  CHECK(has_line(text, "billing_ingest_windows_total{outcome=\"rejected\"} 1"));
  CHECK(has_line(text, "billing_ingest_rejections_total{reason=\"implausible_value\"} 1"));
}

TEST_CASE("scrape-time gauges come from the source at every render") {
  service_metrics metrics;
  uint64_t commits = 10;
  metrics.set_scrape_source([&] {
    scrape_gauges gauges;
    gauges.ledger_commits = commits;
    gauges.ledger_synced_writes = 4;
    gauges.calls_in_flight = 1;
    gauges.open_streams = 3;
    return gauges;
  });
  CHECK(has_line(metrics.render(), "billing_ledger_commits 10"));
  commits = 25;
  const std::string text = metrics.render();
  CHECK(has_line(text, "billing_ledger_commits 25"));
  CHECK(has_line(text, "billing_ledger_synced_writes 4"));
  CHECK(has_line(text, "billing_rpc_calls_in_flight 1"));
  CHECK(has_line(text, "billing_stream_subscribers 3"));
}

TEST_CASE("cluster gauges appear only on a cluster node") {
  service_metrics metrics;
  scrape_gauges gauges;
  metrics.set_scrape_source([&] { return gauges; });
  CHECK(metrics.render().find("billing_cluster") == std::string::npos);
  gauges.cluster = scrape_gauges::cluster_figures{2, 5, 9, 4, 0, {{"etcd_reachable", 0}}};
  const std::string text = metrics.render();
  // Further kinds by name (etcd mode's etcd_reachable, fence_refused, ...).
  CHECK(has_line(text, "billing_cluster{kind=\"etcd_reachable\"} 0"));
  CHECK(has_line(text, "billing_cluster{kind=\"peers_connected\"} 2"));
  CHECK(has_line(text, "billing_cluster{kind=\"handoff_pending\"} 5"));
  CHECK(has_line(text, "billing_cluster{kind=\"handoff_held\"} 9"));
  CHECK(has_line(text, "billing_cluster{kind=\"handoff_delivered\"} 4"));
}

TEST_CASE("synced writes are a latency histogram; RocksDB and actor state are gauges") {
  service_metrics metrics;
  metrics.record_synced_write(std::chrono::milliseconds{3});
  metrics.record_synced_write(std::chrono::milliseconds{40});
  scrape_gauges gauges;
  gauges.customer_actors = 12;
  gauges.queued_parts = 2;
  gauges.sst_bytes = 4096;
  gauges.estimated_windows = 77;
  metrics.set_scrape_source([&] { return gauges; });
  const std::string text = metrics.render();
  CHECK(has_line(text, "billing_ledger_sync_seconds_count 2"));
  CHECK(has_line(text, "billing_ledger_sync_seconds_bucket{le=\"0.005\"} 1"));
  CHECK(has_line(text, "billing_actors{kind=\"customer_ledgers\"} 12"));
  CHECK(has_line(text, "billing_actors{kind=\"queued_parts\"} 2"));
  CHECK(has_line(text, "billing_rocksdb_bytes{kind=\"sst\"} 4096"));
  CHECK(has_line(text, "billing_rocksdb_estimated_windows 77"));
}

TEST_CASE("the ledger's write pause, full disk and free space are gauges") {
  service_metrics metrics;
  scrape_gauges gauges;
  gauges.ledger_disk_free_bytes = 123456;
  metrics.set_scrape_source([&] { return gauges; });
  std::string text = metrics.render();
  CHECK(has_line(text, "billing_ledger_writes_paused 0"));
  CHECK(has_line(text, "billing_ledger_disk_full 0"));
  CHECK(has_line(text, "billing_ledger_disk_free_bytes 123456"));
  gauges.ledger_writes_paused = true;
  gauges.ledger_disk_full = true;
  gauges.ledger_disk_free_bytes = 0;
  text = metrics.render();
  CHECK(has_line(text, "billing_ledger_writes_paused 1"));
  CHECK(has_line(text, "billing_ledger_disk_full 1"));
  CHECK(has_line(text, "billing_ledger_disk_free_bytes 0"));
}
