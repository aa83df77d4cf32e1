// billing-pg-loadgen: the same usage windows billing-loadgen sends to billingd,
// written into PostgreSQL the way a general-purpose database would hold them,
// so bench/pg_compare.sh can put the two side by side.
//
// Each connection sends each batch as one statement, so one transaction (and
// one durable commit with synchronous_commit=on): INSERT ... ON CONFLICT DO
// NOTHING of the whole batch into usage_windows, and, in the same statement,
// the rows actually inserted added to each customer's hourly totals in
// hourly_rollup (ON CONFLICT DO UPDATE SET x = x + EXCLUDED.x), so a batch
// sent twice counts once. At the end the rollups' CPU total for the run's
// customers must equal what the committed batches carried, counted once.
//
// libpq (not a node client) because it adds only libpq-dev to a C++ build that
// already generates the same windows in C++, and a C++ client formatting the
// arrays costs far less than PostgreSQL's parsing them, so the client is not
// the bottleneck.
#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_args.hpp"
#include "bench/stats.hpp"
#include "bench/usage_windows.hpp"

namespace billing::bench {
namespace {

using clock_type = std::chrono::steady_clock;

struct pg_options : load_shape {
  std::string conninfo = "host=127.0.0.1 dbname=postgres user=postgres";
  int days_back = 20;
};

using connection_ptr = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using result_ptr = std::unique_ptr<PGresult, decltype(&PQclear)>;

connection_ptr connect(const std::string& conninfo) {
  connection_ptr connection(PQconnectdb(conninfo.c_str()), &PQfinish);
  if (PQstatus(connection.get()) != CONNECTION_OK) {
    fmt::print(stderr, "connect: {}", PQerrorMessage(connection.get()));
    return connection_ptr(nullptr, &PQfinish);
  }
  return connection;
}

// Runs `sql` without parameters; false after printing the error.
bool execute(PGconn* connection, const char* sql) {
  result_ptr result(PQexec(connection, sql), &PQclear);
  const auto status = PQresultStatus(result.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return true;
  fmt::print(stderr, "{}: {}", sql, PQerrorMessage(connection));
  return false;
}

constexpr const char* schema_sql = R"sql(
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS usage_windows (
  customer_id text NOT NULL, vm_id text NOT NULL, window_start timestamptz NOT NULL,
  window_end timestamptz NOT NULL, cpu_time_nanos bigint NOT NULL,
  memory_bytes_used bigint NOT NULL, memory_bytes_peak bigint NOT NULL,
  memory_bytes_seconds bigint NOT NULL, disk_read_bytes bigint NOT NULL,
  disk_write_bytes bigint NOT NULL, disk_read_ops bigint NOT NULL,
  disk_write_ops bigint NOT NULL, network_rx_bytes bigint NOT NULL,
  network_tx_bytes bigint NOT NULL,
  PRIMARY KEY (customer_id, vm_id, window_start));
CREATE TABLE IF NOT EXISTS hourly_rollup (
  customer_id text NOT NULL, hour timestamptz NOT NULL, windows bigint NOT NULL,
  cpu_time_nanos numeric NOT NULL, memory_bytes_seconds numeric NOT NULL,
  disk_read_bytes numeric NOT NULL, disk_write_bytes numeric NOT NULL,
  network_rx_bytes numeric NOT NULL, network_tx_bytes numeric NOT NULL,
  PRIMARY KEY (customer_id, hour));
)sql";

// $1.. are text arrays of one column each; times are microseconds since the
// epoch (timestamptz's own resolution). The rollup sees only RETURNING's rows:
// the windows this statement inserted, not the duplicates.
constexpr const char* batch_sql = R"sql(
WITH batch AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                       $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
                       $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[])
    AS b(customer_id, vm_id, start_us, end_us, cpu, mem_used, mem_peak, mem_seconds,
         disk_read, disk_write, read_ops, write_ops, rx, tx)),
inserted AS (
  INSERT INTO usage_windows
  SELECT customer_id, vm_id, to_timestamp(start_us / 1e6), to_timestamp(end_us / 1e6), cpu,
         mem_used, mem_peak, mem_seconds, disk_read, disk_write, read_ops, write_ops, rx, tx
  FROM batch
  ON CONFLICT DO NOTHING
  RETURNING customer_id, window_start, cpu_time_nanos, memory_bytes_seconds, disk_read_bytes,
            disk_write_bytes, network_rx_bytes, network_tx_bytes),
hours AS (
  INSERT INTO hourly_rollup
  SELECT customer_id, date_trunc('hour', window_start, 'UTC'), count(*), sum(cpu_time_nanos),
         sum(memory_bytes_seconds), sum(disk_read_bytes), sum(disk_write_bytes),
         sum(network_rx_bytes), sum(network_tx_bytes)
  FROM inserted GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (customer_id, hour) DO UPDATE SET
    windows = hourly_rollup.windows + EXCLUDED.windows,
    cpu_time_nanos = hourly_rollup.cpu_time_nanos + EXCLUDED.cpu_time_nanos,
    memory_bytes_seconds = hourly_rollup.memory_bytes_seconds + EXCLUDED.memory_bytes_seconds,
    disk_read_bytes = hourly_rollup.disk_read_bytes + EXCLUDED.disk_read_bytes,
    disk_write_bytes = hourly_rollup.disk_write_bytes + EXCLUDED.disk_write_bytes,
    network_rx_bytes = hourly_rollup.network_rx_bytes + EXCLUDED.network_rx_bytes,
    network_tx_bytes = hourly_rollup.network_tx_bytes + EXCLUDED.network_tx_bytes)
SELECT count(*) FROM inserted)sql";
constexpr int batch_columns = 14;

// One text-array literal per column, built row by row. Ids are the loadgen's
// own ([a-z0-9-]), so they need no quoting inside the array literal.
class batch_arrays {
 public:
  void clear() {
    for (auto& column : columns_) {
      column.clear();
      column.push_back('{');
    }
  }
  void add(const std::string& customer, const std::string& vm, const usage_window& window) {
    append(0, customer);
    append(1, vm);
    const uint64_t numbers[] = {static_cast<uint64_t>(window.start_ns / 1000),
                                static_cast<uint64_t>(window.end_ns / 1000),
                                window.cpu_time_nanos,
                                window.memory_bytes_used,
                                window.memory_bytes_peak,
                                window.memory_bytes_seconds,
                                window.disk_read_bytes,
                                window.disk_write_bytes,
                                window.disk_read_ops,
                                window.disk_write_ops,
                                window.network_rx_bytes,
                                window.network_tx_bytes};
    for (size_t i = 0; i < std::size(numbers); ++i) append(i + 2, fmt::format("{}", numbers[i]));
  }
  std::vector<const char*> finish() {
    std::vector<const char*> values;
    for (auto& column : columns_) {
      column.push_back('}');
      values.push_back(column.c_str());
    }
    return values;
  }

 private:
  void append(size_t column, const std::string& value) {
    auto& text = columns_[column];
    if (text.size() > 1) text.push_back(',');
    text += value;
  }
  std::string columns_[batch_columns];
};

struct connection_report {
  uint64_t windows_sent = 0;
  uint64_t accepted = 0;
  uint64_t cpu_nanos_accepted = 0;
  // CPU of every batch whose statement committed (inserted or already there):
  // what the rollups must hold for this run's customers.
  uint64_t cpu_nanos_stored = 0;
  uint64_t errors = 0;
  std::vector<double> latencies_ms;
};

connection_report run_connection(const pg_options& options, int connection, int64_t base_ns) {
  connection_report report;
  auto pg = connect(options.conninfo);
  if (!pg) {
    report.errors = static_cast<uint64_t>(options.batches);
    return report;
  }
  const connection_vms vms(options, connection);
  batch_arrays arrays;
  for (int batch = 0; batch < options.batches; ++batch) {
    arrays.clear();
    uint64_t cpu_in_batch = 0;
    for (int i = 0; i < options.batch_size; ++i) {
      const uint64_t index = static_cast<uint64_t>(batch) * options.batch_size + i;
      const usage_window window = window_at(options, index, base_ns);
      arrays.add(vms.customer_ids[window.vm], vms.vm_ids[window.vm], window);
      cpu_in_batch += window.cpu_time_nanos;
    }
    const auto values = arrays.finish();
    report.windows_sent += static_cast<uint64_t>(options.batch_size);
    const auto started = clock_type::now();
    result_ptr result(PQexecParams(pg.get(), batch_sql, batch_columns, nullptr, values.data(),
                                   nullptr, nullptr, 0),
                      &PQclear);
    report.latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(clock_type::now() - started).count());
    if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
      fmt::print(stderr, "batch {}: {}", batch, PQerrorMessage(pg.get()));
      ++report.errors;
      continue;
    }
    const uint64_t inserted = std::stoull(PQgetvalue(result.get(), 0, 0));
    report.accepted += inserted;
    report.cpu_nanos_stored += cpu_in_batch;
    if (inserted == static_cast<uint64_t>(options.batch_size)) {
      report.cpu_nanos_accepted += cpu_in_batch;
    }
  }
  return report;
}

// The rollups' CPU total over the run's customers, as text (numeric).
std::string queried_cpu_nanos(const pg_options& options) {
  auto pg = connect(options.conninfo);
  if (!pg) return "unavailable";
  const std::string pattern = fmt::format("cust-{}-%", options.run_tag);
  const char* values[] = {pattern.c_str()};
  result_ptr result(PQexecParams(pg.get(),
                                 "SELECT coalesce(sum(cpu_time_nanos), 0)::text FROM "
                                 "hourly_rollup WHERE customer_id LIKE $1",
                                 1, nullptr, values, nullptr, nullptr, 0),
                    &PQclear);
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) return "unavailable";
  return PQgetvalue(result.get(), 0, 0);
}

int run(const pg_options& options) {
  {
    auto pg = connect(options.conninfo);
    if (!pg || !execute(pg.get(), schema_sql)) return 2;
  }
  const int64_t base_ns = first_window_start(options.days_back);
  const auto [reports, seconds] = run_connections<connection_report>(
      options.connections, [&](int c) { return run_connection(options, c, base_ns); });

  connection_report total;
  for (const auto& report : reports) {
    total.windows_sent += report.windows_sent;
    total.accepted += report.accepted;
    total.cpu_nanos_accepted += report.cpu_nanos_accepted;
    total.cpu_nanos_stored += report.cpu_nanos_stored;
    total.errors += report.errors;
  }
  total.latencies_ms = sorted_latencies(reports);
  fmt::print("customers_touched {}\nwindows_sent {}\naccepted {}\nerrors {}\n", options.customers,
             total.windows_sent, total.accepted, total.errors);
  fmt::print("cpu_nanos_acknowledged {}\n", total.cpu_nanos_accepted);
  print_throughput(total.accepted, seconds, total.latencies_ms);
  const std::string stored = fmt::format("{}", total.cpu_nanos_stored);
  const std::string queried = queried_cpu_nanos(options);
  fmt::print("verify_cpu_nanos_stored {}\nverify_cpu_nanos_queried {}\nverify {}\n", stored,
             queried, stored == queried ? "ok" : "MISMATCH");
  if (stored != queried) return 3;
  return total.errors == 0 && total.accepted == total.windows_sent ? 0 : 1;
}

}  // namespace
}  // namespace billing::bench

int main(int argc, char** argv) {
  using billing::bench::arg_parser;
  billing::bench::pg_options options;
  arg_parser parser(
      "billing-pg-loadgen: billing-loadgen's windows into PostgreSQL, one transaction per batch "
      "with hourly rollups");
  parser.add("conninfo", "libpq connection string", options.conninfo);
  parser.add("connections", "concurrent connections", options.connections);
  parser.add("batches", "batches per connection", options.batches);
  parser.add("batch-size", "windows per batch (one transaction)", options.batch_size);
  parser.add("vms", "VMs per connection", options.vms_per_connection);
  parser.add("customers",
             "customers, assigned round-robin over all VMs; every one is touched, so at most "
             "--connections x --vms",
             options.customers);
  parser.add("days-back", "first window starts this many days ago", options.days_back);
  parser.add("run-tag", "prefix of every id, so runs against one database stay unique",
             options.run_tag);
  if (auto parsed = parser.parse(argc, argv); parsed != arg_parser::outcome::run) {
    return parsed == arg_parser::outcome::help ? 0 : 2;
  }
  if (options.connections < 1 || options.batches < 1 || options.batch_size < 1 ||
      options.vms_per_connection < 1 || options.customers < 1 ||
      !options.every_customer_touched()) {
    fmt::print(stderr, "invalid arguments (at most --connections x --vms customers); see --help\n");
    return 2;
  }
  return billing::bench::run(options);
}
