// billing-loadgen: simulates metald instances posting 1-minute usage windows
// to billingd with binary Connect over keep-alive HTTP/1.1, and reports what
// was acknowledged, how fast, and with which errors.
//
// Each connection is one simulated metald instance in one region, sending
// `--batches` batches of `--batch-size` windows. Every window is unique: the
// connection's VMs take turns, and each VM's windows advance minute by minute
// from a start `--days-back` days ago. Customers are assigned round-robin over
// all VMs. The exact totals sent (windows, cpu nanoseconds) are printed so a
// run can be checked against the ledger afterwards.
//
// By default each connection sends its next batch as soon as the last one is
// answered (closed loop: the maximum throughput). With `--rate` the batches
// leave on a fixed schedule instead, and a batch's latency counts from when it
// was due, so a server that falls behind shows it in the percentiles rather
// than by slowing the load down (an open-loop run at a fraction of the max).
#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_args.hpp"
#include "bench/connect_client.hpp"
#include "bench/stats.hpp"
#include "bench/usage_windows.hpp"
#include "billing/v1/billing.pb.h"
#include "model/calendar.hpp"

namespace billing::bench {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

constexpr const char* batch_path = "/billing.v1.BillingCollectorService/SendMetricsBatch";

struct loadgen_options : load_shape {
  std::string host = "127.0.0.1";
  std::string port = "8080";
  int regions = 2;
  int days_back = 20;
  int rate = 0;  // metrics/s over all connections; 0: as fast as answered
  bool verify = true;
};

// What one connection observed; merged at the end.
struct connection_report {
  uint64_t windows_sent = 0;
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t rejected = 0;
  uint64_t cpu_nanos_acknowledged = 0;
  // CPU of every window the service answered as stored (accepted or already
  // there): what the ledger must hold for this run's customers.
  uint64_t cpu_nanos_stored = 0;
  std::vector<double> latencies_ms;
  std::map<std::string, uint64_t> errors;  // Connect code or transport failure
};

void fill_window(billing::v1::BillingMetrics& metric, const loadgen_options& options,
                 const connection_vms& vms, uint64_t index, int64_t base_ns) {
  const usage_window window = window_at(options, index, base_ns);
  metric.set_vm_id(vms.vm_ids[window.vm]);
  metric.set_customer_id(vms.customer_ids[window.vm]);
  auto set_time = [](google::protobuf::Timestamp* time, int64_t ns) {
    time->set_seconds(ns / 1'000'000'000);
    time->set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
  };
  set_time(metric.mutable_window_start(), window.start_ns);
  set_time(metric.mutable_window_end(), window.end_ns);
  set_time(metric.mutable_timestamp(), window.end_ns - 100'000'000);
  metric.set_cpu_time_nanos(window.cpu_time_nanos);
  metric.set_memory_bytes_used(window.memory_bytes_used);
  metric.set_memory_bytes_peak(window.memory_bytes_peak);
  metric.set_memory_bytes_seconds(window.memory_bytes_seconds);
  metric.set_disk_read_bytes(window.disk_read_bytes);
  metric.set_disk_write_bytes(window.disk_write_bytes);
  metric.set_disk_read_ops(window.disk_read_ops);
  metric.set_disk_write_ops(window.disk_write_ops);
  metric.set_network_rx_bytes(window.network_rx_bytes);
  metric.set_network_tx_bytes(window.network_tx_bytes);
}

std::string connect_code_of(const std::string& body) {
  const auto key = body.find("\"code\":\"");
  if (key == std::string::npos) return "unknown";
  const auto start = key + 8;
  return body.substr(start, body.find('"', start) - start);
}

connection_report run_connection(const loadgen_options& options, int connection, int64_t base_ns) {
  connection_report report;
  report.latencies_ms.reserve(static_cast<size_t>(options.batches));
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  bool connected = false;
  const std::string region = fmt::format("region-{}", connection % options.regions);
  billing::v1::SendMetricsBatchRequest request;
  request.set_instance_id(fmt::format("loadgen-{}-{}", options.run_tag, connection));
  request.set_region(region);
  for (int i = 0; i < options.batch_size; ++i) request.add_metrics();
  const connection_vms vms(options, connection);
  // With --rate, batch b of every connection is due b intervals after the start.
  const auto paced_start = clock_type::now();
  const auto interval = std::chrono::duration_cast<clock_type::duration>(
      std::chrono::duration<double>(options.rate > 0 ? static_cast<double>(options.batch_size) *
                                                           options.connections / options.rate
                                                     : 0.0));

  for (int batch = 0; batch < options.batches; ++batch) {
    request.set_batch_id(fmt::format("{}-{}-{}", options.run_tag, connection, batch));
    uint64_t cpu_in_batch = 0;
    for (int i = 0; i < options.batch_size; ++i) {
      const uint64_t index = static_cast<uint64_t>(batch) * options.batch_size + i;
      fill_window(*request.mutable_metrics(i), options, vms, index, base_ns);
      cpu_in_batch += request.metrics(i).cpu_time_nanos();
    }
    http::request<http::string_body> post{http::verb::post, batch_path, 11};
    post.set(http::field::host, options.host);
    post.set(http::field::content_type, "application/proto");
    post.set("Connect-Protocol-Version", "1");
    post.keep_alive(true);
    post.body() = request.SerializeAsString();
    post.prepare_payload();
    report.windows_sent += static_cast<uint64_t>(options.batch_size);

    auto started = clock_type::now();
    if (options.rate > 0) {
      started = paced_start + interval * batch;
      std::this_thread::sleep_until(started);
    }
    beast::error_code ec;
    if (!connected) {
      tcp::resolver resolver(io);
      auto endpoints = resolver.resolve(options.host, options.port, ec);
      if (!ec) stream.connect(endpoints, ec);
      connected = !ec;
    }
    http::response<http::string_body> response;
    if (connected) http::write(stream, post, ec);
    if (connected && !ec) http::read(stream, buffer, response, ec);
    const double latency_ms =
        std::chrono::duration<double, std::milli>(clock_type::now() - started).count();
    if (!connected || ec) {
      ++report.errors[fmt::format("transport: {}", ec.message())];
      stream.close();
      connected = false;
      continue;
    }
    report.latencies_ms.push_back(latency_ms);
    if (response.result() != http::status::ok) {
      ++report.errors[connect_code_of(response.body())];
      continue;
    }
    billing::v1::SendMetricsBatchResponse answer;
    if (!answer.ParseFromString(response.body())) {
      ++report.errors["unparsable response"];
      continue;
    }
    report.accepted += answer.accepted_count();
    report.duplicates += answer.duplicate_count();
    report.rejected += answer.rejected_count();
    if (answer.accepted_count() == static_cast<uint32_t>(options.batch_size)) {
      report.cpu_nanos_acknowledged += cpu_in_batch;
    }
    uint64_t cpu_refused = 0;
    for (const auto& item : answer.results()) {
      if (item.status() == billing::v1::ITEM_STATUS_REJECTED &&
          item.index() < static_cast<uint32_t>(options.batch_size)) {
        cpu_refused += request.metrics(static_cast<int>(item.index())).cpu_time_nanos();
      }
    }
    report.cpu_nanos_stored += cpu_in_batch - cpu_refused;
    if (!response.keep_alive()) {
      stream.close();
      connected = false;
    }
  }
  return report;
}

// Sums GetCustomerUsage over every customer of the run (one month bucket per
// month the run's windows touch) and compares it with what the service
// answered as stored. Prints both; false when they differ or a query fails.
bool verify_through_queries(const loadgen_options& options, int64_t base_ns,
                            uint64_t cpu_nanos_stored) {
  const uint64_t windows_per_vm = (static_cast<uint64_t>(options.batches) * options.batch_size +
                                   options.vms_per_connection - 1) /
                                  options.vms_per_connection;
  const int64_t end_ns = base_ns + static_cast<int64_t>(windows_per_vm + 1) * nanos_per_minute;
  const int64_t from = model::bucket_start(model::granularity::month, base_ns);
  const int64_t to = model::next_bucket_start(
      model::granularity::month, model::bucket_start(model::granularity::month, end_ns));
  connect_client client(options.host + ":" + options.port);
  uint64_t queried = 0;
  for (int customer = 0; customer < options.customers; ++customer) {
    billing::v1::GetCustomerUsageRequest request;
    request.set_customer_id(connection_vms::customer_id(options, static_cast<uint64_t>(customer)));
    *request.mutable_start_time() = timestamp_of(from);
    *request.mutable_end_time() = timestamp_of(to);
    request.set_granularity(billing::v1::GRANULARITY_MONTH);
    billing::v1::GetCustomerUsageResponse usage;
    if (client.call("/billing.v1.BillingQueryService/GetCustomerUsage", request, usage) < 0) {
      return false;
    }
    queried += usage.totals().cpu_time_nanos();
  }
  fmt::print("verify_cpu_nanos_stored {}\nverify_cpu_nanos_queried {}\nverify {}\n",
             cpu_nanos_stored, queried, queried == cpu_nanos_stored ? "ok" : "MISMATCH");
  return queried == cpu_nanos_stored;
}

int run(const loadgen_options& options) {
  const int64_t base_ns = first_window_start(options.days_back);
  const auto [reports, seconds] = run_connections<connection_report>(
      options.connections, [&](int c) { return run_connection(options, c, base_ns); });

  connection_report total;
  for (const auto& report : reports) {
    total.windows_sent += report.windows_sent;
    total.accepted += report.accepted;
    total.duplicates += report.duplicates;
    total.rejected += report.rejected;
    total.cpu_nanos_acknowledged += report.cpu_nanos_acknowledged;
    total.cpu_nanos_stored += report.cpu_nanos_stored;
    for (const auto& [code, count] : report.errors) total.errors[code] += count;
  }
  total.latencies_ms = sorted_latencies(reports);
  uint64_t error_count = 0;
  for (const auto& [code, count] : total.errors) error_count += count;

  fmt::print("customers_touched {}\ntarget_rate {}\n", options.customers, options.rate);
  fmt::print("windows_sent {}\naccepted {}\nduplicates {}\nrejected {}\nerrors {}\n",
             total.windows_sent, total.accepted, total.duplicates, total.rejected, error_count);
  for (const auto& [code, count] : total.errors) fmt::print("error[{}] {}\n", code, count);
  fmt::print("cpu_nanos_acknowledged {}\n", total.cpu_nanos_acknowledged);
  print_throughput(total.accepted, seconds, total.latencies_ms);
  const bool all_acknowledged = error_count == 0 && total.accepted == total.windows_sent;
  const bool verified =
      !options.verify || verify_through_queries(options, base_ns, total.cpu_nanos_stored);
  if (!verified) return 3;
  return all_acknowledged ? 0 : 1;
}

}  // namespace
}  // namespace billing::bench

int main(int argc, char** argv) {
  using billing::bench::arg_parser;
  billing::bench::loadgen_options options;
  std::string target = options.host + ":" + options.port;
  arg_parser parser("billing-loadgen: simulated metald instances against a running billingd");
  parser.add("target", "HOST:PORT of billingd", target);
  parser.add("connections", "concurrent keep-alive connections (metald instances)",
             options.connections);
  parser.add("batches", "batches per connection", options.batches);
  parser.add("batch-size", "windows per batch", options.batch_size);
  parser.add("vms", "VMs per connection", options.vms_per_connection);
  parser.add("customers",
             "customers, assigned round-robin over all VMs; every one is touched, so at most "
             "--connections x --vms",
             options.customers);
  parser.add("regions", "regions, assigned round-robin over connections", options.regions);
  parser.add("days-back", "first window starts this many days ago", options.days_back);
  parser.add("run-tag", "prefix of every id, so runs against one data dir stay unique",
             options.run_tag);
  parser.add("rate",
             "metrics/s over all connections, sent on a fixed schedule with latency counted from "
             "each batch's due time (0: each batch as soon as the last is answered)",
             options.rate);
  std::string verify = "yes";
  parser.add("verify",
             "yes: at the end, check through GetCustomerUsage that the ledger holds exactly the "
             "windows answered as stored (exit 3 if not)",
             verify);
  if (auto parsed = parser.parse(argc, argv); parsed != arg_parser::outcome::run) {
    return parsed == arg_parser::outcome::help ? 0 : 2;
  }
  const auto colon = target.rfind(':');
  if (colon == std::string::npos || options.connections < 1 || options.batches < 1 ||
      options.batch_size < 1 || options.vms_per_connection < 1 || options.customers < 1 ||
      options.regions < 1 || options.rate < 0) {
    fmt::print(stderr, "invalid arguments; see --help\n");
    return 2;
  }
  if (!options.every_customer_touched()) {
    fmt::print(stderr,
               "--customers={} but only {} VMs (--connections x --vms): each VM belongs to one "
               "customer, so at most {} customers can be touched\n",
               options.customers, options.total_vms(), options.total_vms());
    return 2;
  }
  options.verify = verify == "yes";
  options.host = target.substr(0, colon);
  options.port = target.substr(colon + 1);
  return billing::bench::run(options);
}
