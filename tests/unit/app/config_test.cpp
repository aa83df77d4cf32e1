#include <doctest/doctest.h>

#include <algorithm>
#include <thread>

#include "app/config.hpp"

using namespace billing;
using namespace billing::app;

TEST_CASE("host:port parsing") {
  auto ok = parse_host_port("listen", "127.0.0.1:0");
  REQUIRE(ok.ok());
  CHECK(ok->first == "127.0.0.1");
  CHECK(ok->second == 0);
  auto v6 = parse_host_port("listen", "[::1]:8080");
  REQUIRE(v6.ok());
  CHECK(v6->first == "::1");
  CHECK(v6->second == 8080);
  for (const char* bad : {"127.0.0.1", ":80", "host:", "host:65536", "host:80x", "host:-1"}) {
    CAPTURE(bad);
    auto r = parse_host_port("listen", bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == status_code::invalid_argument);
    CHECK(r.error().message().find("--listen") != std::string::npos);
  }
}

TEST_CASE("`--name value` is joined for options that take a value") {
  billingd_config config;
  std::vector<std::string> storage = {"billingd",  "--listen", "127.0.0.1:0", "--data-dir=/tmp/x",
                                      "--regions", "eu,us",    "--help"};
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  auto args = normalize_arguments(config, static_cast<int>(argv.size()), argv.data());
  CHECK(args == std::vector<std::string>{"--listen=127.0.0.1:0", "--data-dir=/tmp/x",
                                         "--regions=eu,us", "--help"});
}

TEST_CASE("settings derived from flags") {
  billingd_config config;
  config.regions = " eu-west-1, us-east-1 ,,";
  config.max_vcpus = 8;
  auto settings = config.ingest_settings();
  CHECK(settings.allowed_regions == std::set<std::string>{"eu-west-1", "us-east-1"});
  CHECK(settings.limits.max_vcpus == 8);
  config.max_stream_buffer_bytes = 4096;
  auto server = config.server_options();
  REQUIRE(server.ok());
  CHECK(server->max_stream_buffer_bytes == 4096);
  config.listen = "nonsense";
  CHECK_FALSE(config.server_options().ok());
  config.listen = "127.0.0.1:9000";
  config.io_threads = 0;
  CHECK_FALSE(config.server_options().ok());
}

TEST_CASE("a snapshot chunk is at least 1024 bytes, whatever the flag says") {
  billingd_config config;
  CHECK(config.replicator_settings().snapshot_chunk_bytes == size_t{2} << 20);
  config.replication_snapshot_chunk_bytes = 0;
  CHECK(config.replicator_settings().snapshot_chunk_bytes == 1024);
  config.replication_snapshot_chunk_bytes = 1023;
  CHECK(config.replicator_settings().snapshot_chunk_bytes == 1024);
  config.replication_snapshot_chunk_bytes = 4096;
  CHECK(config.replicator_settings().snapshot_chunk_bytes == 4096);
}

TEST_CASE("metald settings derived from flags") {
  billingd_config config;
  std::vector<std::string> storage = {"billingd",
                                      "--metald-region",
                                      "eu-test",
                                      "--heartbeat-timeout-seconds=7",
                                      "--expected-cadence-seconds=30",
                                      "--max-batch-items=600"};
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  auto args = normalize_arguments(config, static_cast<int>(argv.size()), argv.data());
  REQUIRE_FALSE(config.parse(args));
  const auto metald = config.metald_settings();
  CHECK(metald.region == "eu-test");
  CHECK(metald.max_samples == 600);
  CHECK(metald.gap_after_ns == int64_t{30} * 1'000'000'000);
  const auto instances = config.instances_settings();
  CHECK(instances.heartbeat_timeout_ns == int64_t{7} * 1'000'000'000);
  CHECK(instances.region == "eu-test");
  CHECK(instances.gap_after_ns == int64_t{30} * 1'000'000'000);
}

TEST_CASE("store settings: RocksDB's log and the free space that resumes writes") {
  billingd_config config;
  auto defaults = config.store_options();
  REQUIRE(defaults.ok());
  CHECK(defaults->rocksdb_log_dir.empty());  // into billingd's log, never the data dir
  CHECK(defaults->rocksdb_log_level == observability::log_level::warn);
  CHECK(defaults->resume.min_free_bytes == uint64_t{128} << 20);
  config.rocksdb_log_dir = "/var/log/billingd";
  config.rocksdb_log_level = "info";
  config.resume_free_bytes = 4096;
  auto set = config.store_options();
  REQUIRE(set.ok());
  CHECK(set->rocksdb_log_dir == "/var/log/billingd");
  CHECK(set->rocksdb_log_level == observability::log_level::info);
  CHECK(set->resume.min_free_bytes == 4096);
  config.rocksdb_log_level = "verbose";
  auto bad = config.store_options();
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code() == status_code::invalid_argument);
  CHECK(bad.error().message().find("--rocksdb-log-level") != std::string::npos);
}

TEST_CASE("CAF's sharing scheduler is the default; --scheduler.policy overrides it") {
  auto policy_after = [](std::vector<std::string> flags) {
    billingd_config config;
    REQUIRE_FALSE(config.parse(std::move(flags), "billingd.ini"));
    return caf::get_or(config, "scheduler.policy", caf::atom("none"));
  };
  CHECK(policy_after({}) == caf::atom("sharing"));
  CHECK(policy_after({"--scheduler.policy=stealing"}) == caf::atom("stealing"));
}

TEST_CASE("one CAF worker per core (at least 2) by default; --scheduler.max-threads overrides it") {
  auto workers_after = [](std::vector<std::string> flags) {
    billingd_config config;
    REQUIRE_FALSE(config.parse(std::move(flags), "billingd.ini"));
    return caf::get_or(config, "scheduler.max-threads", size_t{0});
  };
  const size_t cores = std::max(2u, std::thread::hardware_concurrency());
  CHECK(workers_after({}) == cores);
  CHECK(workers_after({"--scheduler.max-threads=7"}) == 7);
}
