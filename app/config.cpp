#include "app/config.hpp"

#include <fmt/format.h>
#include <caf/config_option_set.hpp>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <thread>

#include "model/calendar.hpp"

namespace billing::app {

billingd_config::billingd_config() {
  // CAF's work-stealing workers poll and sleep in 50 us steps while idle;
  // with more workers than cores that polling takes CPU from the committer.
  // One shared queue measured 1.16x the throughput with 16% less CPU when
  // batches span many customers, and the same elsewhere (README, figures).
  // --scheduler.policy=stealing restores CAF's default.
  set("scheduler.policy", caf::atom("sharing"));
  // CAF starts at least 4 workers. Beside them run the committer and the
  // HTTP threads, so on a 2-core node 4 workers only switched among
  // themselves: one worker per core measured 1.04-1.08x the ingest
  // throughput with 4-8% less CPU (README, figures).
  // --scheduler.max-threads=N overrides it.
  set("scheduler.max-threads",
      static_cast<size_t>(std::max(2u, std::thread::hardware_concurrency())));
  opt_group{custom_options_, "global"}
      .add(listen, "listen", "HOST:PORT to serve Connect on (port 0 picks a free port)")
      .add(data_dir, "data-dir", "directory of the RocksDB ledger (created if missing)")
      .add(max_body_bytes, "max-body-bytes",
           "largest request body accepted, before and after decompression")
      .add(max_batch_items, "max-batch-items", "most metrics one SendMetricsBatch may carry")
      .add(regions, "regions", "comma-separated regions accepted (empty: any region)")
      .add(io_threads, "io-threads", "threads serving HTTP")
      .add(request_timeout_ms, "request-timeout-ms",
           "deadline of a call that sends no Connect-Timeout-Ms")
      .add(drain_timeout_ms, "drain-timeout-ms",
           "on SIGTERM, how long in-flight calls may take to finish")
      .add(header_timeout_ms, "header-timeout-ms",
           "how long a connection may take to complete TLS and send its request headers "
           "(slow clients are closed)")
      .add(idle_timeout_ms, "idle-timeout-ms", "how long an idle keep-alive connection is kept")
      .add(stream_timeout_ms, "stream-timeout-ms",
           "deadline of a server stream (StreamLiveUsage) that sends no Connect-Timeout-Ms; "
           "0: none")
      .add(max_stream_buffer_bytes, "max-stream-buffer-bytes",
           "bytes a server stream may queue unwritten (a slow reader) before its producer "
           "is told to hold back")
      .add(block_cache_bytes, "block-cache-bytes", "RocksDB block cache size")
      .add(rocksdb_log_dir, "rocksdb-log-dir",
           "directory for RocksDB's own LOG files, best on another volume than --data-dir "
           "(empty: RocksDB's log lines go into billingd's log, component rocksdb)")
      .add(rocksdb_log_level, "rocksdb-log-level",
           "least severe RocksDB log line kept: debug, info, warn or error")
      .add(resume_free_bytes, "resume-free-bytes",
           "after the data volume filled up, writes resume once this many bytes are free")
      .add(max_vcpus, "max-vcpus", "CPU time above window length x this is rejected")
      .add(max_window_seconds, "max-window-seconds", "longest usage window accepted")
      .add(max_clock_skew_seconds, "max-clock-skew-seconds",
           "how far in the future a window may end")
      .add(max_memory_bytes, "max-memory-bytes", "memory gauges above this are rejected")
      .add(raw_retention_days, "raw-retention-days",
           "raw windows older than this many days are dropped (rollups are kept) and such old "
           "windows are refused on ingest; 0 keeps raw windows forever")
      .add(customer_idle_seconds, "customer-idle-seconds",
           "a customer's ledger actor idle this long is stopped to free memory (its state is in "
           "RocksDB; the next request respawns it); 0: never")
      .add(expected_cadence_seconds, "expected-cadence-seconds",
           "metald's window cadence: a hole this long between a VM's windows is a gap")
      .add(max_query_buckets, "max-query-buckets", "most buckets one GetCustomerUsage returns")
      .add(max_window_query_days, "max-window-query-days",
           "longest range one GetBillingWindow may cover")
      .add(query_workers, "query-workers", "actors answering usage queries")
      .add(dump_audit, "dump-audit",
           "maintenance: print CUSTOMER's audit trail (ingest records, then refused re-sends) as "
           "JSON lines and exit (the server must be stopped)")
      .add(dump_windows, "dump-windows",
           "maintenance: print CUSTOMER's stored windows as JSON lines and exit "
           "(the server must be stopped)")
      .add(dump_replicated, "dump-replicated",
           "maintenance: print every record of the column families replicas hold identical, "
           "one tab-separated line of family name, hex key and hex value each, in family then "
           "key order, and exit (the server must be stopped)")
      .add(ui_dir, "ui-dir",
           "directory of the built dashboard served at /ui/ (empty: the ui directory next to "
           "the billingd binary, where scripts/build.sh puts it)")
      .add(backup_dir, "backup-dir",
           "directory for online backups taken with BillingAdminService/CreateBackup "
           "(empty: backups disabled)")
      .add(plans_file, "plans-file",
           "JSON file of price plan versions (billing.v1.PlanFile) applied at start, like "
           "SetCustomerPlan; unchanged versions are left alone")
      .add(restore_from, "restore-from",
           "maintenance: restore the latest backup in this directory into an empty --data-dir "
           "and exit")
      .add(verify_audit, "verify-audit",
           "maintenance: verify the tamper-evident audit chain, print the result as JSON and "
           "exit 0 when intact, 1 when not (the server must be stopped)")
      .add(auth_tokens_file, "auth-tokens-file",
           "bearer tokens, one per line: '<sha256-hex-of-token> <scope>[,<scope>...] [name]' "
           "(scopes: ingest, ingest:<region>, customer:<id>, admin)")
      .add(insecure_no_auth, "insecure-no-auth",
           "development only: serve every call without authentication")
      .add(tls_cert_file, "tls-cert-file",
           "serve HTTPS with this PEM certificate (chain); needs --tls-key-file")
      .add(tls_key_file, "tls-key-file", "the PEM private key of --tls-cert-file")
      .add(tls_client_ca_file, "tls-client-ca-file",
           "mTLS: verify client certificates against the CA(s) in this PEM file (re-read, like "
           "the certificate and key, when the files change)")
      .add(tls_client_auth, "tls-client-auth",
           "with --tls-client-ca-file: 'required' (every client presents a certificate) or "
           "'optional' (a client may instead send a bearer token; one it presents must verify)")
      .add(max_inflight_batches, "max-inflight-batches",
           "ingest calls being stored at once; more get resource_exhausted (0: unbounded)")
      .add(rate_limit_per_second, "rate-limit-per-second",
           "ingest calls per second per source (token name, or peer address without auth); "
           "0: no limit")
      .add(rate_limit_burst, "rate-limit-burst",
           "ingest calls a source may make at once before the rate applies (0: one second's "
           "worth)")
      .add(metald_region, "metald-region",
           "region under which VMs reported through billing.v1.BillingService (metald) are filed")
      .add(metald_stop_grace_ms, "metald-stop-grace-ms",
           "a NotifyVmStopped after a VM's last sample waits this long for samples stamped up "
           "to the stop (metald's final batch) before the session's closing window is written")
      .add(heartbeat_timeout_seconds, "heartbeat-timeout-seconds",
           "a metald instance silent this long has its VMs' sessions ended at its last "
           "heartbeat")
      .add(node_id, "node-id", "this node's id in --cluster-members (e.g. the pod name)")
      .add(cluster_members, "cluster-members",
           "every cluster node as id@host:port (the CAF middleman port), comma-separated, this "
           "node included; empty runs a single node")
      .add(cluster_bind_address, "cluster-bind-address",
           "address the node-to-node listener binds (default: this node's host in "
           "--cluster-members; 0.0.0.0 for every interface)")
      .add(cluster_peer_timeout_ms, "cluster-peer-timeout-ms",
           "a request to a peer node taking longer counts the peer as unreachable")
      .add(cluster_retry_interval_ms, "cluster-retry-interval-ms",
           "how long an unreachable peer is left alone before it is tried again, and how often "
           "writes held for it are retried")
      .add(cluster_tls_cert_file, "cluster-tls-cert-file",
           "node-to-node TLS (caf-openssl): this node's PEM certificate")
      .add(cluster_tls_key_file, "cluster-tls-key-file", "the PEM private key of the certificate")
      .add(cluster_tls_ca_file, "cluster-tls-ca-file",
           "the CA(s) that sign every node's certificate (peers are verified against it)")
      .add(otlp_endpoint, "otlp-endpoint",
           "OpenTelemetry traces: the OTLP/HTTP collector, e.g. http://127.0.0.1:4318; spans are "
           "POSTed to <endpoint>/v1/traces as protobuf (empty: tracing off)")
      .add(otlp_max_queue_spans, "otlp-max-queue-spans",
           "finished spans held for export; past this, new spans are dropped (and counted) "
           "rather than slowing any call")
      .add(otlp_timeout_ms, "otlp-timeout-ms",
           "how long one export to the collector may take before its spans are dropped")
      .add(etcd_endpoints, "etcd-endpoints",
           "etcd's client URLs (http(s)://host:port, comma-separated): the cluster's member set "
           "lives there (instead of --cluster-members)")
      .add(etcd_prefix, "etcd-prefix", "every key billingd keeps in etcd starts with this")
      .add(etcd_timeout_ms, "etcd-timeout-ms", "deadline of each etcd request per endpoint")
      .add(etcd_lease_ttl_seconds, "etcd-lease-ttl-seconds",
           "a node silent this long (crashed, cut off) drops out of the member set")
      .add(etcd_poll_interval_ms, "etcd-poll-interval-ms",
           "how often the lease is renewed and the member set read")
      .add(etcd_ca_file, "etcd-ca-file", "https etcd endpoints: the CA of etcd's certificate")
      .add(etcd_cert_file, "etcd-cert-file", "client certificate for etcd (--client-cert-auth)")
      .add(etcd_key_file, "etcd-key-file", "the PEM private key of --etcd-cert-file")
      .add(etcd_leave_on_stop, "etcd-leave-on-stop",
           "on SIGTERM, leave the member set and hand every customer over before stopping "
           "(removing a node for good); otherwise its customers come back to it on restart")
      .add(shards, "shards",
           "with --etcd-endpoints: customers hash to this many shards; fixed when the cluster "
           "is created (the count stored in etcd wins)")
      .add(replication_factor, "replication-factor",
           "with --etcd-endpoints: nodes in each shard's replica set (the first leads); above 1 "
           "a write is acknowledged once a majority of them hold it durably")
      .add(replication_log_entries, "replication-log-entries",
           "with --replication-factor above 1: entries each shard's log keeps; a replica "
           "further behind (or empty) gets a snapshot of the shard instead")
      .add(replication_snapshot_chunk_bytes, "replication-snapshot-chunk-bytes",
           "with --replication-factor above 1: a shard's snapshot travels in chunks of about "
           "this many bytes, each written durably on arrival (at least 1024)")
      .add(replication_ack_timeout_ms, "replication-ack-timeout-ms",
           "with --replication-factor above 1: a write a majority of its shard's replicas do not "
           "hold durably within this long answers unavailable (clients retry)")
      .add(etcd_max_shard_moves, "etcd-max-shard-moves",
           "with --etcd-endpoints: shards with a live leader one node moves per poll at most "
           "(shards whose leader is gone move at once)")
      .add(cluster_address, "cluster-address",
           "with --etcd-endpoints: host:port where peers reach this node's middleman");
}

result<std::pair<std::string, uint16_t>> parse_host_port(std::string_view flag,
                                                         std::string_view text) {
  auto invalid = [&] {
    return status{status_code::invalid_argument,
                  fmt::format("--{} must be HOST:PORT, got '{}'", flag, text)};
  };
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return invalid();
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc{} || end != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    return invalid();
  }
  return std::pair{std::string{host}, static_cast<uint16_t>(port)};
}

result<gateway::server_options> billingd_config::server_options() const {
  auto endpoint = parse_host_port("listen", listen);
  if (!endpoint.ok()) return endpoint.error();
  if (io_threads == 0) return status{status_code::invalid_argument, "--io-threads must be >= 1"};
  gateway::server_options options;
  options.host = endpoint->first;
  options.port = endpoint->second;
  options.max_body_bytes = max_body_bytes;
  options.io_threads = io_threads;
  options.default_timeout = std::chrono::milliseconds{request_timeout_ms};
  options.header_timeout = std::chrono::milliseconds{header_timeout_ms};
  options.idle_timeout = std::chrono::milliseconds{idle_timeout_ms};
  options.tls_cert_file = tls_cert_file;
  options.tls_key_file = tls_key_file;
  options.tls_client_ca_file = tls_client_ca_file;
  if (tls_client_auth == "required") {
    options.tls_client_auth = gateway::client_certificates::required;
  } else if (tls_client_auth == "optional") {
    options.tls_client_auth = gateway::client_certificates::optional;
  } else {
    return status{status_code::invalid_argument,
                  fmt::format("--tls-client-auth must be 'required' or 'optional', not '{}'",
                              tls_client_auth)};
  }
  options.max_stream_buffer_bytes = max_stream_buffer_bytes;
  options.stream_default_timeout = std::chrono::milliseconds{stream_timeout_ms};
  return options;
}

result<storage::store_options> billingd_config::store_options() const {
  storage::store_options options;
  options.data_dir = data_dir;
  options.block_cache_bytes = block_cache_bytes;
  options.raw_retention_ns = raw_retention_ns();
  options.rocksdb_log_dir = rocksdb_log_dir;
  options.replication_log_entries = std::max<uint64_t>(replication_log_entries, 1);
  using observability::log_level;
  constexpr std::pair<std::string_view, log_level> levels[] = {{"debug", log_level::debug},
                                                               {"info", log_level::info},
                                                               {"warn", log_level::warn},
                                                               {"error", log_level::error}};
  const auto* level = std::find_if(std::begin(levels), std::end(levels), [&](const auto& named) {
    return named.first == rocksdb_log_level;
  });
  if (level == std::end(levels)) {
    return status{status_code::invalid_argument,
                  fmt::format("--rocksdb-log-level must be debug, info, warn or error, not '{}'",
                              rocksdb_log_level)};
  }
  options.rocksdb_log_level = level->second;
  options.resume.min_free_bytes = resume_free_bytes;
  return options;
}

actors::ingest_settings billingd_config::ingest_settings() const {
  actors::ingest_settings settings;
  settings.limits.max_vcpus = max_vcpus;
  settings.limits.max_window_ns = int64_t{max_window_seconds} * 1'000'000'000;
  settings.limits.max_clock_skew_ns = int64_t{max_clock_skew_seconds} * 1'000'000'000;
  settings.limits.max_memory_bytes = max_memory_bytes;
  settings.limits.raw_retention_ns = raw_retention_ns();
  settings.customer_idle = std::chrono::seconds{customer_idle_seconds};
  std::string_view rest = regions;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    std::string_view region = rest.substr(0, comma);
    while (!region.empty() && region.front() == ' ') region.remove_prefix(1);
    while (!region.empty() && region.back() == ' ') region.remove_suffix(1);
    if (!region.empty()) settings.allowed_regions.emplace(region);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  return settings;
}

gateway::collector_settings billingd_config::collector_settings() const {
  gateway::collector_settings settings;
  settings.max_batch_items = max_batch_items;
  settings.limits = ingest_settings().limits;
  if (rate_limit_per_second > 0) {
    settings.rate_limit =
        std::make_shared<security::rate_limiter>(rate_limit_per_second, rate_limit_burst);
  }
  settings.inflight = std::make_shared<security::inflight_gate>(max_inflight_batches);
  return settings;
}

result<security::authenticator> billingd_config::authenticator() const {
  if (insecure_no_auth && !auth_tokens_file.empty()) {
    return status{status_code::invalid_argument,
                  "--insecure-no-auth and --auth-tokens-file exclude each other"};
  }
  if (insecure_no_auth) return security::authenticator::insecure_no_auth();
  if (auth_tokens_file.empty()) {
    return status{status_code::invalid_argument,
                  "no authentication configured: pass --auth-tokens-file=FILE, or "
                  "--insecure-no-auth for local development"};
  }
  auto tokens = security::token_table::load_file(auth_tokens_file);
  if (!tokens.ok()) return tokens.error();
  return security::authenticator::with_tokens(std::move(tokens).value());
}

int64_t billingd_config::raw_retention_ns() const {
  return int64_t{raw_retention_days} * model::kNanosPerDay;
}

gateway::metald_settings billingd_config::metald_settings() const {
  gateway::metald_settings settings;
  settings.region = metald_region;
  settings.max_samples = max_batch_items;
  settings.limits = ingest_settings().limits;
  settings.gap_after_ns = int64_t{expected_cadence_seconds} * model::kNanosPerSecond;
  return settings;
}

actors::instances_settings billingd_config::instances_settings() const {
  actors::instances_settings settings{int64_t{heartbeat_timeout_seconds} * model::kNanosPerSecond,
                                      metald_region,
                                      int64_t{expected_cadence_seconds} * model::kNanosPerSecond};
  settings.stop_grace = std::chrono::milliseconds{metald_stop_grace_ms};
  return settings;
}

actors::query_settings billingd_config::query_settings() const {
  actors::query_settings settings;
  settings.limits.max_buckets = max_query_buckets;
  settings.limits.max_window_range_ns = int64_t{max_window_query_days} * model::kNanosPerDay;
  settings.limits.expected_cadence_ns = int64_t{expected_cadence_seconds} * model::kNanosPerSecond;
  settings.max_window_ns = int64_t{max_window_seconds} * model::kNanosPerSecond;
  settings.workers = query_workers;
  return settings;
}

std::vector<std::string> normalize_arguments(const billingd_config& config, int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    const bool long_flag_without_value =
        arg.size() > 2 && arg.starts_with("--") && arg.find('=') == std::string::npos;
    if (long_flag_without_value && i + 1 < argc) {
      const auto* option = config.program_options().cli_long_name_lookup(arg.substr(2));
      if (option != nullptr && !option->is_flag()) {
        out.push_back(arg + "=" + argv[++i]);
        continue;
      }
    }
    out.push_back(std::move(arg));
  }
  return out;
}

result<std::optional<cluster::membership>> billingd_config::membership() const {
  if (replication_factor > 1 && !etcd_mode()) {
    return status{status_code::invalid_argument,
                  "--replication-factor above 1 needs --etcd-endpoints (replica sets, leaders and "
                  "their epochs are kept in etcd)"};
  }
  if (etcd_mode()) {
    // The member set comes from etcd; until it answers, this node alone.
    if (!cluster_members.empty()) {
      return status{status_code::invalid_argument,
                    "--etcd-endpoints and --cluster-members exclude each other"};
    }
    if (node_id.empty() || cluster_address.empty()) {
      return status{status_code::invalid_argument,
                    "--etcd-endpoints needs --node-id and --cluster-address (host:port)"};
    }
    auto address = parse_host_port("--cluster-address", cluster_address);
    if (!address.ok()) return address.error();
    auto made = cluster::membership::make(
        {cluster::member{node_id, address.value().first, address.value().second}}, node_id);
    if (!made.ok()) return made.error();
    return std::optional<cluster::membership>{std::move(made).value()};
  }
  if (cluster_members.empty()) {
    if (!node_id.empty()) {
      return status{status_code::invalid_argument, "--node-id needs --cluster-members"};
    }
    return std::optional<cluster::membership>{};
  }
  if (node_id.empty()) {
    return status{status_code::invalid_argument,
                  "--cluster-members needs --node-id (this node's id in the list)"};
  }
  auto members = cluster::membership::parse_members(cluster_members);
  if (!members.ok()) {
    return status{status_code::invalid_argument,
                  fmt::format("--cluster-members: {}", members.error().message())};
  }
  auto made = cluster::membership::make(std::move(members).value(), node_id);
  if (!made.ok()) {
    return status{status_code::invalid_argument,
                  fmt::format("--cluster-members/--node-id: {}", made.error().message())};
  }
  return std::optional<cluster::membership>{std::move(made).value()};
}

result<cluster::etcd::etcd_settings> billingd_config::etcd_settings() const {
  cluster::etcd::etcd_settings settings;
  std::string_view rest = etcd_endpoints;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    if (comma != 0) settings.endpoints.emplace_back(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  if (settings.endpoints.empty()) {
    return status{status_code::invalid_argument, "--etcd-endpoints names no endpoint"};
  }
  if (etcd_prefix.empty() || etcd_prefix.back() != '/') {
    return status{status_code::invalid_argument, "--etcd-prefix must end with '/'"};
  }
  if (etcd_lease_ttl_seconds < 2) {
    return status{status_code::invalid_argument, "--etcd-lease-ttl-seconds must be at least 2"};
  }
  settings.prefix = etcd_prefix;
  settings.timeout = std::chrono::milliseconds{std::max<uint32_t>(etcd_timeout_ms, 10)};
  settings.ca_file = etcd_ca_file;
  settings.cert_file = etcd_cert_file;
  settings.key_file = etcd_key_file;
  return settings;
}

cluster::etcd::coordinator_settings billingd_config::coordinator_settings() const {
  cluster::etcd::coordinator_settings settings;
  auto address = parse_host_port("--cluster-address", cluster_address);
  if (address.ok()) settings.self = {node_id, address.value().first, address.value().second};
  settings.gateway_address = listen;
  settings.lease_ttl_seconds = etcd_lease_ttl_seconds;
  settings.poll_interval = std::chrono::milliseconds{std::max<uint32_t>(etcd_poll_interval_ms, 10)};
  settings.shards = std::max<uint32_t>(shards, 1);
  settings.replication_factor = std::max<uint32_t>(replication_factor, 1);
  settings.max_moves_per_poll = etcd_max_shard_moves;
  return settings;
}

bool billingd_config::replicated() const {
  return etcd_mode() && replication_factor > 1;
}

cluster::replication::replicator_settings billingd_config::replicator_settings() const {
  cluster::replication::replicator_settings settings;
  settings.self_id = node_id;
  settings.ack_timeout =
      std::chrono::milliseconds{std::max<uint32_t>(replication_ack_timeout_ms, 10)};
  settings.peer_timeout =
      std::chrono::milliseconds{std::max<uint32_t>(cluster_peer_timeout_ms, 10)};
  settings.snapshot_chunk_bytes =
      static_cast<size_t>(std::max<uint64_t>(replication_snapshot_chunk_bytes, 1024));
  settings.tls = router_settings().tls;
  return settings;
}

cluster::router_settings billingd_config::router_settings() const {
  cluster::router_settings settings;
  settings.replicated = replicated();
  settings.peer_timeout = std::chrono::milliseconds{cluster_peer_timeout_ms};
  settings.retry_interval =
      std::chrono::milliseconds{std::max<uint32_t>(cluster_retry_interval_ms, 10)};
  settings.tls = !cluster_tls_cert_file.empty();
  return settings;
}

status billingd_config::apply_cluster_tls() {
  const int given = int{!cluster_tls_cert_file.empty()} + int{!cluster_tls_key_file.empty()} +
                    int{!cluster_tls_ca_file.empty()};
  if (given == 0) return status::ok_status();
  if (given != 3) {
    return status{status_code::invalid_argument,
                  "node-to-node TLS needs all of --cluster-tls-cert-file, --cluster-tls-key-file "
                  "and --cluster-tls-ca-file"};
  }
  for (const auto* file : {&cluster_tls_cert_file, &cluster_tls_key_file, &cluster_tls_ca_file}) {
    if (!std::filesystem::exists(*file)) {
      return status{status_code::invalid_argument,
                    fmt::format("cluster TLS file {} does not exist", *file)};
    }
  }
  openssl_certificate = cluster_tls_cert_file;
  openssl_key = cluster_tls_key_file;
  openssl_cafile = cluster_tls_ca_file;
  return status::ok_status();
}

}  // namespace billing::app
