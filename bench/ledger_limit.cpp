// billing-ledger-limit: the ceiling for durable ingest on this machine. Writes
// the records a loadgen run would send straight into the ledger store (a raw
// window each, and each customer's hourly/daily/monthly rollup totals as Puts,
// in synced, group-committed WriteBatches), from
// `--writers` threads that each wait for durability before the next batch, as
// connections do. Dividing the server's figure by this one shows what the
// network, Connect, validation and the actors cost.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_args.hpp"
#include "model/rollup.hpp"
#include "storage/ledger_store.hpp"

namespace billing::bench {
namespace {

constexpr int64_t nanos_per_minute = 60'000'000'000;

struct limit_options {
  std::string data_dir = "./bench-ledger-limit";
  int writers = 4;
  int batches = 100;
  int batch_size = 1000;
  int vms = 100;
  int customers = 100;
};

model::usage_window window_for(const limit_options& options, int writer, uint64_t index) {
  const uint64_t vm = index % static_cast<uint64_t>(options.vms);
  const uint64_t minute = index / static_cast<uint64_t>(options.vms);
  const uint64_t global_vm = static_cast<uint64_t>(writer) * options.vms + vm;
  model::usage_window window;
  // Each writer owns its customers, as each customer actor owns its rollups.
  window.customer_id = fmt::format("cust-{}-{}", writer, global_vm % options.customers);
  window.region = fmt::format("region-{}", writer % 2);
  window.vm_id = fmt::format("vm-{}-{}", writer, vm);
  window.window_start_ns =
      1'700'000'000'000'000'000 + static_cast<int64_t>(minute) * nanos_per_minute;
  window.window_end_ns = window.window_start_ns + nanos_per_minute;
  window.cpu_time_nanos = 30'000'000'000 + index % 1000;
  window.memory_bytes_used = uint64_t{1} << 30;
  window.memory_bytes_peak = window.memory_bytes_used;
  window.memory_bytes_seconds = window.memory_bytes_used * 60;
  return window;
}

int run(const limit_options& options) {
  std::error_code ignored;
  std::filesystem::remove_all(options.data_dir, ignored);
  storage::store_options store_options;
  store_options.data_dir = options.data_dir;
  auto opened = storage::ledger_store::open(store_options);
  if (!opened.ok()) {
    fmt::print(stderr, "cannot open {}: {}\n", options.data_dir, opened.error().message());
    return 1;
  }
  auto store = opened.value();
  std::vector<std::thread> writers;
  std::atomic<uint64_t> failures{0};
  const auto started = std::chrono::steady_clock::now();
  for (int w = 0; w < options.writers; ++w) {
    writers.emplace_back([&, w] {
      // Each customer's bucket totals so far, as a customer actor keeps them.
      std::map<std::string, model::rollup_accumulator::bucket_map> totals;
      for (int batch = 0; batch < options.batches; ++batch) {
        storage::write_set writes;
        // As the customer actors write them: each customer's new rollup
        // totals with its windows, in the same WriteBatch.
        std::map<std::string, model::rollup_accumulator> rollups;
        for (int i = 0; i < options.batch_size; ++i) {
          const auto window =
              window_for(options, w, static_cast<uint64_t>(batch) * options.batch_size + i);
          writes.put_window(window);
          if (!rollups[window.customer_id].add(window).ok()) ++failures;
        }
        for (const auto& [customer, added] : rollups) {
          for (const auto& [id, value] : added.buckets()) {
            auto& total = totals[customer][id];
            if (!total.merge(value).ok()) ++failures;
            writes.put_rollup(customer, id, total);
          }
        }
        if (!store->commit_and_wait(std::move(writes)).ok()) ++failures;
      }
    });
  }
  for (auto& writer : writers) writer.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto stats = store->stats();
  const uint64_t records =
      static_cast<uint64_t>(options.writers) * options.batches * options.batch_size;
  fmt::print("records {}\nfailures {}\nseconds {:.3f}\nrecords_per_second {:.0f}\n", records,
             failures.load(), seconds, static_cast<double>(records) / seconds);
  fmt::print("commits {}\nsynced_writes {}\n", stats.commits_requested, stats.synced_writes);
  store.reset();
  std::filesystem::remove_all(options.data_dir, ignored);
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace billing::bench

int main(int argc, char** argv) {
  using billing::bench::arg_parser;
  billing::bench::limit_options options;
  arg_parser parser(
      "billing-ledger-limit: synced group-committed ledger writes without the server");
  parser.add("data-dir", "scratch RocksDB directory (deleted before and after)", options.data_dir);
  parser.add("writers", "concurrent writers, each waiting for durability", options.writers);
  parser.add("batches", "batches per writer", options.batches);
  parser.add("batch-size", "windows per batch", options.batch_size);
  parser.add("vms", "VMs per writer", options.vms);
  parser.add("customers", "customers", options.customers);
  if (auto parsed = parser.parse(argc, argv); parsed != arg_parser::outcome::run) {
    return parsed == arg_parser::outcome::help ? 0 : 2;
  }
  if (options.writers < 1 || options.batches < 1 || options.batch_size < 1 || options.vms < 1 ||
      options.customers < 1) {
    fmt::print(stderr, "invalid arguments; see --help\n");
    return 2;
  }
  return billing::bench::run(options);
}
