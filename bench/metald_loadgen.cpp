// billing-metald-loadgen: simulates metald instances posting 100 ms
// cumulative-counter samples to billing.v1.BillingService/SendMetricsBatch
// with binary Connect over keep-alive HTTP/1.1 (one batch per VM-minute, 600
// samples), and reports samples acknowledged per second and batch latency.
//
// Each connection owns `--vms` VMs; it first announces each with
// NotifyVmStarted (so counters count from zero at the start), then sends
// `--minutes` rounds of one batch per VM. The counters are exact functions of
// the sample number, so the usage the ledger must hold is known: at the end
// GetCustomerUsage over every customer of the run must give exactly the CPU
// nanoseconds and VM-time sent (exit 3 if not).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_args.hpp"
#include "bench/connect_client.hpp"
#include "bench/stats.hpp"
#include "billing/v1/billing.pb.h"
#include "billing/v1/metald.pb.h"
#include "model/calendar.hpp"

namespace billing::bench {
namespace {

using clock_type = std::chrono::steady_clock;

constexpr int64_t nanos_per_sample = 100'000'000;  // metald samples every 100 ms
constexpr int64_t nanos_per_minute = 60'000'000'000;
constexpr const char* service = "/billing.v1.BillingService/";

struct metald_options {
  std::string target = "127.0.0.1:8080";
  int connections = 8;
  int vms_per_connection = 50;
  int minutes = 10;
  int samples_per_batch = 600;
  int customers = 100;
  int hours_back = 24;
  std::string run_tag = "run";
  bool verify = true;
};

struct connection_report {
  uint64_t samples_sent = 0;
  uint64_t samples_acknowledged = 0;
  std::vector<double> latencies_ms;
  std::map<std::string, uint64_t> errors;
};

// The CPU nanoseconds a VM's cgroup accumulates per 100 ms sample: differs per
// VM so that a sample filed under the wrong VM or customer shows in the totals.
uint64_t cpu_per_sample(uint64_t global_vm) {
  return 50'000'000 + global_vm * 1'000;
}

std::string vm_id(const metald_options& options, int connection, int vm) {
  return fmt::format("mvm-{}-{}-{}", options.run_tag, connection, vm);
}

std::string customer_id(const metald_options& options, uint64_t global_vm) {
  return fmt::format("mcust-{}-{}", options.run_tag,
                     global_vm % static_cast<uint64_t>(options.customers));
}

// Fills `request` with VM `vm`'s samples number first+1 .. first+count.
void fill_batch(v1::MetaldSendMetricsBatchRequest& request, uint64_t global_vm, int64_t start_ns,
                uint64_t first, int count) {
  const uint64_t cpu_step = cpu_per_sample(global_vm);
  for (int i = 0; i < count; ++i) {
    const uint64_t n = first + static_cast<uint64_t>(i) + 1;
    auto* sample = request.mutable_metrics(i);
    *sample->mutable_timestamp() =
        timestamp_of(start_ns + static_cast<int64_t>(n) * nanos_per_sample);
    sample->set_cpu_time_nanos(static_cast<int64_t>(n * cpu_step));
    sample->set_memory_usage_bytes(int64_t{1} << 30);
    sample->set_disk_read_bytes(static_cast<int64_t>(n * 4096));
    sample->set_disk_write_bytes(static_cast<int64_t>(n * 8192));
    sample->set_network_rx_bytes(static_cast<int64_t>(n * 1500));
    sample->set_network_tx_bytes(static_cast<int64_t>(n * 3000));
  }
}

connection_report run_connection(const metald_options& options, int connection, int64_t start_ns) {
  connection_report report;
  connect_client client(options.target);
  auto global_vm = [&](int vm) {
    return static_cast<uint64_t>(connection) * options.vms_per_connection + vm;
  };
  for (int vm = 0; vm < options.vms_per_connection; ++vm) {
    v1::MetaldNotifyVmStartedRequest started;
    started.set_vm_id(vm_id(options, connection, vm));
    started.set_customer_id(customer_id(options, global_vm(vm)));
    started.set_start_time(start_ns);
    v1::MetaldSuccessResponse ok;
    if (client.call(std::string(service) + "NotifyVmStarted", started, ok) < 0 || !ok.success()) {
      ++report.errors["NotifyVmStarted failed"];
    }
  }
  v1::MetaldSendMetricsBatchRequest request;
  for (int i = 0; i < options.samples_per_batch; ++i) request.add_metrics();
  const std::string path = std::string(service) + "SendMetricsBatch";
  for (int minute = 0; minute < options.minutes; ++minute) {
    for (int vm = 0; vm < options.vms_per_connection; ++vm) {
      request.set_vm_id(vm_id(options, connection, vm));
      request.set_customer_id(customer_id(options, global_vm(vm)));
      fill_batch(request, global_vm(vm), start_ns,
                 static_cast<uint64_t>(minute) * options.samples_per_batch,
                 options.samples_per_batch);
      report.samples_sent += static_cast<uint64_t>(options.samples_per_batch);
      v1::MetaldSendMetricsBatchResponse answer;
      const double ms = client.call(path, request, answer);
      if (ms < 0 || !answer.success()) {
        ++report.errors[ms < 0 ? "call failed" : "success false"];
        continue;
      }
      report.latencies_ms.push_back(ms);
      report.samples_acknowledged += static_cast<uint64_t>(options.samples_per_batch);
    }
  }
  return report;
}

// Sums GetCustomerUsage over the run's customers and compares CPU and VM time
// with what the samples carry (counters from zero at the start notification).
bool verify_through_queries(const metald_options& options, int64_t start_ns) {
  uint64_t cpu_expected = 0;
  const uint64_t samples = static_cast<uint64_t>(options.minutes) * options.samples_per_batch;
  const uint64_t vms = static_cast<uint64_t>(options.connections) * options.vms_per_connection;
  for (uint64_t vm = 0; vm < vms; ++vm) cpu_expected += cpu_per_sample(vm) * samples;
  const uint64_t active_expected = vms * samples * nanos_per_sample;
  const int64_t end_ns = start_ns + static_cast<int64_t>(samples) * nanos_per_sample;
  const int64_t from = model::bucket_start(model::granularity::month, start_ns);
  const int64_t to = model::next_bucket_start(
      model::granularity::month, model::bucket_start(model::granularity::month, end_ns));
  connect_client client(options.target);
  uint64_t cpu_queried = 0;
  uint64_t active_queried = 0;
  for (int customer = 0; customer < options.customers; ++customer) {
    v1::GetCustomerUsageRequest request;
    request.set_customer_id(customer_id(options, static_cast<uint64_t>(customer)));
    *request.mutable_start_time() = timestamp_of(from);
    *request.mutable_end_time() = timestamp_of(to);
    request.set_granularity(v1::GRANULARITY_MONTH);
    v1::GetCustomerUsageResponse usage;
    if (client.call("/billing.v1.BillingQueryService/GetCustomerUsage", request, usage) < 0) {
      return false;
    }
    cpu_queried += usage.totals().cpu_time_nanos();
    active_queried += usage.totals().vm_active_nanos();
  }
  const bool ok = cpu_queried == cpu_expected && active_queried == active_expected;
  fmt::print(
      "verify_cpu_nanos_expected {}\nverify_cpu_nanos_queried {}\nverify_vm_active_nanos_expected "
      "{}\nverify_vm_active_nanos_queried {}\nverify {}\n",
      cpu_expected, cpu_queried, active_expected, active_queried, ok ? "ok" : "MISMATCH");
  return ok;
}

int run(const metald_options& options) {
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const int64_t start_ns = (now_ns - int64_t{options.hours_back} * 60 * nanos_per_minute) /
                           nanos_per_minute * nanos_per_minute;
  std::vector<connection_report> reports(static_cast<size_t>(options.connections));
  std::vector<std::thread> threads;
  const auto started = clock_type::now();
  for (int c = 0; c < options.connections; ++c) {
    threads.emplace_back(
        [&, c] { reports[static_cast<size_t>(c)] = run_connection(options, c, start_ns); });
  }
  for (auto& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(clock_type::now() - started).count();

  connection_report total;
  for (auto& report : reports) {
    total.samples_sent += report.samples_sent;
    total.samples_acknowledged += report.samples_acknowledged;
    total.latencies_ms.insert(total.latencies_ms.end(), report.latencies_ms.begin(),
                              report.latencies_ms.end());
    for (const auto& [what, count] : report.errors) total.errors[what] += count;
  }
  std::sort(total.latencies_ms.begin(), total.latencies_ms.end());
  uint64_t error_count = 0;
  for (const auto& [what, count] : total.errors) error_count += count;
  fmt::print("samples_sent {}\nsamples_acknowledged {}\nerrors {}\n", total.samples_sent,
             total.samples_acknowledged, error_count);
  for (const auto& [what, count] : total.errors) fmt::print("error[{}] {}\n", what, count);
  fmt::print("seconds {:.3f}\nsamples_per_second {:.0f}\n", seconds,
             static_cast<double>(total.samples_acknowledged) / seconds);
  fmt::print("batch_latency_ms p50 {:.2f} p99 {:.2f} p999 {:.2f}\n",
             percentile(total.latencies_ms, 0.50), percentile(total.latencies_ms, 0.99),
             percentile(total.latencies_ms, 0.999));
  if (options.verify && !verify_through_queries(options, start_ns)) return 3;
  return error_count == 0 ? 0 : 1;
}

}  // namespace
}  // namespace billing::bench

int main(int argc, char** argv) {
  using billing::bench::arg_parser;
  billing::bench::metald_options options;
  arg_parser parser(
      "billing-metald-loadgen: simulated metald instances posting 100 ms samples to billingd");
  parser.add("target", "HOST:PORT of billingd", options.target);
  parser.add("connections", "concurrent keep-alive connections", options.connections);
  parser.add("vms", "VMs per connection", options.vms_per_connection);
  parser.add("minutes", "rounds of one batch per VM", options.minutes);
  parser.add("samples", "samples per batch (600: one VM-minute at 100 ms)",
             options.samples_per_batch);
  parser.add("customers", "customers, assigned round-robin over all VMs", options.customers);
  parser.add("hours-back", "the VMs start this many hours ago", options.hours_back);
  parser.add("run-tag", "prefix of every id, so runs against one data dir stay unique",
             options.run_tag);
  std::string verify = "yes";
  parser.add("verify",
             "yes: at the end, check through GetCustomerUsage that the ledger holds exactly the "
             "CPU and VM time sent (exit 3 if not)",
             verify);
  if (auto parsed = parser.parse(argc, argv); parsed != arg_parser::outcome::run) {
    return parsed == arg_parser::outcome::help ? 0 : 2;
  }
  const int64_t span_minutes = int64_t{options.minutes} * options.samples_per_batch / 600;
  if (options.connections < 1 || options.vms_per_connection < 1 || options.minutes < 1 ||
      options.samples_per_batch < 1 || options.customers < 1 || options.hours_back < 1 ||
      span_minutes > int64_t{options.hours_back} * 60) {
    fmt::print(stderr, "invalid arguments (the samples must end before now); see --help\n");
    return 2;
  }
  options.verify = verify == "yes";
  return billing::bench::run(options);
}
