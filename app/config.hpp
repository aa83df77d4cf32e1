// billingd's settings: every one is a command-line flag (--name=value or
// --name value) and may also be set in the INI config file (--config-file,
// section [global]). CAF's option parser provides --help and the file.
#pragma once

#include <caf/actor_system_config.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/query_worker.hpp"
#include "actors/regional_ingest.hpp"
#include "cluster/etcd/coordinator.hpp"
#include "cluster/etcd/etcd_client.hpp"
#include "cluster/membership.hpp"
#include "cluster/node_router.hpp"
#include "cluster/replication/replicator.hpp"
#include "gateway/connect_server.hpp"
#include "gateway/services/collector_service.hpp"
#include "gateway/services/metald_service.hpp"
#include "security/auth.hpp"
#include "storage/ledger_store.hpp"

namespace billing::app {

class billingd_config : public caf::actor_system_config {
 public:
  billingd_config();

  // The options this program defines (CAF's own are not included).
  const caf::config_option_set& program_options() const { return custom_options_; }

  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./data";
  uint64_t max_body_bytes = uint64_t{16} << 20;
  uint32_t max_batch_items = 10'000;
  std::string regions;  // comma-separated; empty accepts any region
  uint32_t io_threads = 1;
  uint32_t request_timeout_ms = 30'000;
  uint32_t drain_timeout_ms = 30'000;
  uint32_t header_timeout_ms = 10'000;
  uint32_t idle_timeout_ms = 60'000;
  uint64_t max_stream_buffer_bytes = uint64_t{1} << 20;
  uint64_t stream_timeout_ms = 0;  // 0: live streams stay open until the client leaves
  uint64_t block_cache_bytes = uint64_t{256} << 20;
  std::string rocksdb_log_dir;  // empty: RocksDB's log goes into billingd's
  std::string rocksdb_log_level = "warn";
  uint64_t resume_free_bytes = uint64_t{128} << 20;  // free space to resume writes after ENOSPC
  // Validation limits.
  uint32_t max_vcpus = 512;
  uint32_t max_window_seconds = 3600;
  uint32_t max_clock_skew_seconds = 300;
  uint64_t max_memory_bytes = uint64_t{64} << 40;
  // Raw windows are kept this long (0: forever); rollups forever.
  uint32_t raw_retention_days = 90;
  uint32_t customer_idle_seconds = 600;  // passivate idle customer ledgers; 0: never
  // Queries.
  uint32_t expected_cadence_seconds = 60;
  uint32_t max_query_buckets = 744;
  uint32_t max_window_query_days = 31;
  uint32_t query_workers = 4;
  // Maintenance: print a customer's stored windows as JSON lines and exit.
  std::string dump_windows;
  // Maintenance: print every record of the replicated families and exit.
  bool dump_replicated = false;
  std::string dump_audit;     // maintenance: print a customer's audit trail and exit
  std::string backup_dir;     // where CreateBackup writes; empty disables backups
  std::string ui_dir;         // the dashboard's files; empty: "ui" next to the binary
  std::string restore_from;   // maintenance: restore this backup dir into data_dir and exit
  bool verify_audit = false;  // maintenance: verify the audit chain and exit
  // Authentication: exactly one of a token file or the explicit dev mode.
  std::string auth_tokens_file;
  bool insecure_no_auth = false;
  // TLS (HTTPS) on the gateway; empty: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  std::string tls_client_auth = "required";  // with a client CA: required or optional
  // Backpressure.
  uint32_t max_inflight_batches = 256;
  uint32_t rate_limit_per_second = 0;  // per source; 0: no limit
  uint32_t rate_limit_burst = 0;       // 0: one second's worth
  std::string plans_file;  // price plan versions applied at start (JSON, billing.v1.PlanFile)
  // metald (billing.v1.BillingService): its API names no region.
  std::string metald_region = "default";
  uint32_t heartbeat_timeout_seconds = 120;
  uint32_t metald_stop_grace_ms = 30'000;  // a stop waits this long for the final batch
  // Cluster (issue 5): empty --cluster-members runs a single node.
  std::string node_id;
  std::string cluster_members;       // "id@host:port,..." including this node
  std::string cluster_bind_address;  // empty: this node's own member host
  uint32_t cluster_peer_timeout_ms = 5'000;
  uint32_t cluster_retry_interval_ms = 1'000;
  std::string cluster_tls_cert_file;
  std::string cluster_tls_key_file;
  std::string cluster_tls_ca_file;
  // OpenTelemetry traces (README "Traces"): empty endpoint, no tracing.
  std::string otlp_endpoint;
  uint32_t otlp_max_queue_spans = 2048;
  uint32_t otlp_timeout_ms = 10'000;
  // Coordination in etcd (issue 15): with --etcd-endpoints the member set is
  // live in etcd instead of --cluster-members; --cluster-address is this
  // node's middleman address, as peers reach it.
  std::string etcd_endpoints;  // comma-separated http(s)://host:port
  std::string etcd_prefix = "/billing/";
  uint32_t etcd_timeout_ms = 2'000;
  uint32_t etcd_lease_ttl_seconds = 5;
  uint32_t etcd_poll_interval_ms = 500;
  std::string etcd_ca_file;
  std::string etcd_cert_file;
  std::string etcd_key_file;
  std::string cluster_address;
  bool etcd_leave_on_stop = false;
  uint32_t shards = 256;            // fixed when the cluster is created
  uint32_t replication_factor = 1;  // replicas per shard (the leader serves)
  uint32_t replication_ack_timeout_ms = 5'000;
  uint64_t replication_log_entries = 20'000;
  uint64_t replication_snapshot_chunk_bytes = uint64_t{2} << 20;
  uint32_t etcd_max_shard_moves = 16;  // rebalancing moves per node and poll

  // Settings of each module, derived from the fields above; errors name the flag.
  result<gateway::server_options> server_options() const;
  result<storage::store_options> store_options() const;
  actors::ingest_settings ingest_settings() const;
  actors::query_settings query_settings() const;
  int64_t raw_retention_ns() const;
  gateway::collector_settings collector_settings() const;
  // The token table of --auth-tokens-file, or the dev mode of
  // --insecure-no-auth; invalid_argument when neither or both are given or
  // the file is unreadable or malformed.
  result<security::authenticator> authenticator() const;
  gateway::metald_settings metald_settings() const;
  actors::instances_settings instances_settings() const;
  // The membership of --cluster-members and --node-id; nullopt when no
  // cluster is configured. invalid_argument names the bad flag.
  result<std::optional<cluster::membership>> membership() const;
  cluster::router_settings router_settings() const;
  // Replicated ledgers (issue 16): etcd mode with a replication factor above 1.
  bool replicated() const;
  cluster::replication::replicator_settings replicator_settings() const;
  bool etcd_mode() const { return !etcd_endpoints.empty(); }
  // The etcd client's settings of the --etcd-* flags.
  result<cluster::etcd::etcd_settings> etcd_settings() const;
  // This node's registration (node id, --cluster-address, gateway address).
  cluster::etcd::coordinator_settings coordinator_settings() const;
  // Copies the --cluster-tls-* files into CAF's openssl settings; call before
  // the actor system starts. invalid_argument if only some are given.
  status apply_cluster_tls();
};

// CAF's parser takes `--name=value`; users also type `--name value`. Joins
// such pairs for the options `config` knows to take a value.
std::vector<std::string> normalize_arguments(const billingd_config& config, int argc, char** argv);

// Splits "host:port" ("[v6]:port" too); invalid_argument naming `flag` otherwise.
result<std::pair<std::string, uint16_t>> parse_host_port(std::string_view flag,
                                                         std::string_view text);

}  // namespace billing::app
