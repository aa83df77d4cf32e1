// billing-query-bench: the query figures of README.md.
//
// --populate writes a customer with --vms VMs (half in each of two regions)
// and --days days of 1-minute windows straight into a ledger directory,
// through the same write_set and rollup code as the customer actors (WAL
// sync off: only the data matters, not how fast it was written). Then, with
// --target, it times GetCustomerUsage (the month by day, and by hour over a
// day) and GetBillingWindow (one hour of every VM) against a running billingd
// over keep-alive HTTP/1.1 with binary Connect, and checks every answer's
// totals against what was written. With --data-dir and no --target it runs
// the same queries in-process against the store: the limit without HTTP,
// Connect and actors.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "actors/query_worker.hpp"
#include "bench/bench_args.hpp"
#include "bench/connect_client.hpp"
#include "bench/stats.hpp"
#include "billing/v1/billing.pb.h"
#include "gateway/services/convert.hpp"
#include "model/calendar.hpp"
#include "model/rollup.hpp"
#include "storage/ledger_store.hpp"

namespace billing::bench {
namespace {

using clock_type = std::chrono::steady_clock;
constexpr int64_t minute_ns = 60 * model::kNanosPerSecond;

struct bench_options {
  std::string data_dir;
  std::string target;
  std::string customer = "bench-customer";
  int vms = 100;
  int days = 31;
  int queries = 200;
  bool populate = false;
};

// The first day of the dataset: the start of last month, so --days 31 fits
// in the months before now and retention (90 days) keeps all of it.
int64_t dataset_start() {
  const int64_t this_month = model::bucket_start(model::granularity::month, model::unix_now_ns());
  return model::bucket_start(model::granularity::month, this_month - 1);
}

// Deterministic counters per (vm, minute), so totals can be recomputed.
uint64_t cpu_of(int vm, int64_t minute) {
  return 1'000'000 + static_cast<uint64_t>((vm * 7919 + minute * 104729) % 50'000'000);
}

model::usage_window window_of(const bench_options& options, int vm, int64_t minute) {
  model::usage_window w;
  w.customer_id = options.customer;
  w.region = vm % 2 == 0 ? "eu-west-1" : "us-east-1";
  w.vm_id = fmt::format("vm-{:03}", vm);
  w.window_start_ns = dataset_start() + minute * minute_ns;
  w.window_end_ns = w.window_start_ns + minute_ns;
  w.cpu_time_nanos = cpu_of(vm, minute);
  w.memory_bytes_used = uint64_t{2} << 30;
  w.memory_bytes_peak = uint64_t{2} << 30;
  w.memory_bytes_seconds = (uint64_t{2} << 30) * 60;
  w.network_tx_bytes = static_cast<uint64_t>(minute % 1000) * 1000;
  return w;
}

int populate(const bench_options& options) {
  storage::store_options store_options;
  store_options.data_dir = options.data_dir;
  store_options.sync_writes = false;
  auto store = storage::ledger_store::open(store_options);
  if (!store.ok()) {
    fmt::print(stderr, "cannot open {}: {}\n", options.data_dir, store.error().message());
    return 1;
  }
  const int64_t minutes = int64_t{options.days} * 1440;
  uint64_t written = 0;
  status failed = status::ok_status();
  status commit_failed = status::ok_status();
  // One write per VM-hour, like a customer actor's commit group.
  for (int64_t hour = 0; hour * 60 < minutes; ++hour) {
    for (int vm = 0; vm < options.vms; ++vm) {
      storage::write_set writes;
      model::rollup_accumulator rollups;
      for (int64_t minute = hour * 60; minute < std::min(minutes, (hour + 1) * 60); ++minute) {
        const auto window = window_of(options, vm, minute);
        writes.put_window(window);
        if (status added = rollups.add(window); !added.ok()) failed = added;
        ++written;
      }
      writes.merge_rollups(options.customer, rollups);
      // Only the committer thread writes commit_failed; it is read after the
      // store (and so the thread) is gone.
      store.value()->commit(std::move(writes), [&commit_failed](status done) {
        if (!done.ok()) commit_failed = done;
      });
    }
  }
  store.value().reset();  // drains the committer
  if (failed.ok()) failed = commit_failed;
  if (!failed.ok()) {
    fmt::print(stderr, "populate failed: {}\n", failed.message());
    return 1;
  }
  fmt::print("windows_written {}\n", written);
  return 0;
}

uint64_t expected_cpu(const bench_options& options, int64_t from_minute, int64_t to_minute) {
  uint64_t sum = 0;
  for (int vm = 0; vm < options.vms; ++vm) {
    for (int64_t minute = from_minute; minute < to_minute; ++minute) sum += cpu_of(vm, minute);
  }
  return sum;
}

// Times `queries` calls made by `make_call` (which returns the latency or -1
// and checks the answer); prints p50/p99 and returns false on any failure.
bool time_queries(const std::string& name, int queries,
                  const std::function<double(int)>& make_call) {
  std::vector<double> latencies;
  for (int i = 0; i < queries; ++i) {
    const double ms = make_call(i);
    if (ms < 0) return false;
    latencies.push_back(ms);
  }
  std::sort(latencies.begin(), latencies.end());
  fmt::print("{}_latency_ms p50 {:.3f} p99 {:.3f}\n", name, percentile(latencies, 0.5),
             percentile(latencies, 0.99));
  return true;
}

// How a query reaches the data: over HTTP to billingd, or straight to the
// store with the query workers' own functions (the limit without HTTP,
// Connect and actors). Both return the latency in ms, or -1 on error.
struct query_path {
  std::function<double(const v1::GetCustomerUsageRequest&, v1::GetCustomerUsageResponse&)> usage;
  std::function<double(const v1::GetBillingWindowRequest&, v1::GetBillingWindowResponse&)> window;
};

query_path over_http(connect_client& client) {
  return {
      [&client](const auto& request, auto& response) {
        return client.call("/billing.v1.BillingQueryService/GetCustomerUsage", request, response);
      },
      [&client](const auto& request, auto& response) {
        return client.call("/billing.v1.BillingQueryService/GetBillingWindow", request, response);
      }};
}

query_path in_process(const storage::ledger_store& store) {
  const actors::query_settings settings;
  return {[&store, settings](const v1::GetCustomerUsageRequest& request,
                             v1::GetCustomerUsageResponse& response) {
            const auto started = clock_type::now();
            auto query = gateway::to_usage_query(request);
            if (!query.ok()) return -1.0;
            auto usage = actors::customer_usage(store, query.value(), settings);
            if (!usage.ok()) return -1.0;
            response = gateway::to_proto(usage.value());
            return std::chrono::duration<double, std::milli>(clock_type::now() - started).count();
          },
          [&store, settings](const v1::GetBillingWindowRequest& request,
                             v1::GetBillingWindowResponse& response) {
            const auto started = clock_type::now();
            auto window =
                actors::billing_window(store, gateway::to_window_query(request), settings);
            if (!window.ok()) return -1.0;
            response = gateway::to_proto(window.value());
            return std::chrono::duration<double, std::milli>(clock_type::now() - started).count();
          }};
}

int run_queries(const bench_options& options, const query_path& path) {
  const int64_t start = dataset_start();
  const int64_t minutes = int64_t{options.days} * 1440;
  const int64_t month_end = model::next_bucket_start(model::granularity::month, start);
  const int64_t month_minutes = std::min(minutes, (month_end - start) / minute_ns);
  const uint64_t month_cpu = expected_cpu(options, 0, month_minutes);
  std::mt19937 random(7);
  bool ok = true;

  ok = ok && time_queries("usage_month_by_day", options.queries, [&](int) {
         v1::GetCustomerUsageRequest request;
         request.set_customer_id(options.customer);
         *request.mutable_start_time() = timestamp_of(start);
         *request.mutable_end_time() = timestamp_of(month_end);
         request.set_granularity(v1::GRANULARITY_DAY);
         v1::GetCustomerUsageResponse response;
         const double ms = path.usage(request, response);
         if (ms >= 0 && response.totals().cpu_time_nanos() != month_cpu) {
           fmt::print(stderr, "month total {} != expected {}\n", response.totals().cpu_time_nanos(),
                      month_cpu);
           return -1.0;
         }
         return ms;
       });
  const int64_t days = std::max<int64_t>(1, minutes / 1440);
  ok = ok && time_queries("usage_day_by_hour", options.queries, [&](int) {
         const int64_t day = static_cast<int64_t>(random() % static_cast<uint64_t>(days));
         v1::GetCustomerUsageRequest request;
         request.set_customer_id(options.customer);
         *request.mutable_start_time() = timestamp_of(start + day * model::kNanosPerDay);
         *request.mutable_end_time() = timestamp_of(start + (day + 1) * model::kNanosPerDay);
         request.set_granularity(v1::GRANULARITY_HOUR);
         v1::GetCustomerUsageResponse response;
         const double ms = path.usage(request, response);
         const uint64_t expected =
             expected_cpu(options, day * 1440, std::min(minutes, (day + 1) * 1440));
         if (ms >= 0 && response.totals().cpu_time_nanos() != expected) return -1.0;
         return ms;
       });
  const int64_t hours = std::max<int64_t>(1, minutes / 60);
  ok = ok && time_queries("billing_window_hour", options.queries, [&](int) {
         const int64_t hour = static_cast<int64_t>(random() % static_cast<uint64_t>(hours));
         v1::GetBillingWindowRequest request;
         request.set_customer_id(options.customer);
         *request.mutable_start_time() = timestamp_of(start + hour * model::kNanosPerHour);
         *request.mutable_end_time() = timestamp_of(start + (hour + 1) * model::kNanosPerHour);
         v1::GetBillingWindowResponse response;
         const double ms = path.window(request, response);
         const uint64_t expected =
             expected_cpu(options, hour * 60, std::min(minutes, (hour + 1) * 60));
         if (ms >= 0 &&
             (response.totals().cpu_time_nanos() != expected || !response.gaps().empty())) {
           return -1.0;
         }
         return ms;
       });
  fmt::print("query_check {}\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

int run(const bench_options& options) {
  if (options.populate) return populate(options);
  if (!options.target.empty()) {
    connect_client client(options.target);
    return run_queries(options, over_http(client));
  }
  storage::store_options store_options;
  store_options.data_dir = options.data_dir;
  auto store = storage::ledger_store::open(store_options);
  if (!store.ok()) {
    fmt::print(stderr, "cannot open {}: {}\n", options.data_dir, store.error().message());
    return 1;
  }
  return run_queries(options, in_process(*store.value()));
}

}  // namespace
}  // namespace billing::bench

int main(int argc, char** argv) {
  using billing::bench::arg_parser;
  billing::bench::bench_options options;
  std::string populate = "no";
  arg_parser parser("billing-query-bench: populate a ledger, then time usage queries");
  parser.add("populate", "yes: write the dataset into --data-dir and exit", populate);
  parser.add("data-dir",
             "ledger directory to populate, or to query in-process when --target is not given "
             "(billingd must not be running on it)",
             options.data_dir);
  parser.add("target", "HOST:PORT of a billingd serving the populated data dir", options.target);
  parser.add("customer", "customer id of the dataset", options.customer);
  parser.add("vms", "VMs, half in each of two regions", options.vms);
  parser.add("days", "days of 1-minute windows from the start of last month", options.days);
  parser.add("queries", "calls timed per query kind", options.queries);
  if (auto parsed = parser.parse(argc, argv); parsed != arg_parser::outcome::run) {
    return parsed == arg_parser::outcome::help ? 0 : 2;
  }
  options.populate = populate == "yes";
  if (options.vms < 1 || options.days < 1 || options.days > 31 || options.queries < 1 ||
      (options.data_dir.empty() && options.target.empty())) {
    fmt::print(stderr, "invalid arguments; see --help\n");
    return 2;
  }
  return billing::bench::run(options);
}
