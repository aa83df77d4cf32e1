// A blocking client of etcd's v3 API through its JSON gateway (HTTP/1.1 POST
// of protobuf-JSON to /v3/kv/range, /v3/kv/put, /v3/kv/txn, /v3/lease/*),
// on the repository's Boost.Beast HTTP client. Why the gateway rather than
// gRPC: README "Design". Every call has a deadline (the settings' timeout
// per endpoint tried); an endpoint that cannot be reached is left for the
// next one, and when none answers the call fails with `unavailable` naming
// what went wrong: callers treat that as "etcd unreachable", never as fatal.
// Keys are given relative to the settings' prefix. Thread-safe (one request
// at a time).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/status.hpp"

namespace billing::cluster::etcd {

struct etcd_settings {
  std::vector<std::string> endpoints;  // "http://host:port" or "https://host:port"
  std::string prefix = "/billing/";    // prepended to every key
  std::chrono::milliseconds timeout{2000};
  std::string ca_file;    // https endpoints: the CA that signed etcd's certificate
  std::string cert_file;  // client certificate (etcd --client-cert-auth), with key_file
  std::string key_file;
};

struct etcd_kv {
  std::string key;  // without the prefix
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct etcd_range {
  int64_t revision = 0;  // the store's revision when it was read
  std::vector<etcd_kv> kvs;
};

// One put of a compare-and-swap transaction: applied only if `key`'s
// mod_revision is still `expected_mod_revision` (0: the key does not exist).
struct cas_put {
  std::string key;
  std::string value;
  int64_t expected_mod_revision = 0;
  int64_t lease = 0;
};

class etcd_client {
 public:
  // invalid_argument for no endpoint or one that is not an http(s) URL.
  static result<std::unique_ptr<etcd_client>> make(etcd_settings settings);
  ~etcd_client();

  const etcd_settings& settings() const { return settings_; }

  result<etcd_range> get(const std::string& key);
  // Every key starting with `key_prefix`, in key order.
  result<etcd_range> get_prefix(const std::string& key_prefix);
  // Answers the revision of the write.
  result<int64_t> put(const std::string& key, const std::string& value, int64_t lease = 0);
  status erase(const std::string& key);
  // All puts or none, in one transaction; false (nothing written) when some
  // key's mod_revision is not the expected one any more.
  result<bool> put_all_if(const std::vector<cas_put>& puts);

  // A lease of `ttl_seconds`; answers its id.
  result<int64_t> grant_lease(int64_t ttl_seconds);
  // Renews the lease; answers its remaining TTL, 0 when it has expired (or
  // never existed): keys under it are gone.
  result<int64_t> keep_alive(int64_t lease);
  status revoke_lease(int64_t lease);

  // The endpoint that answered last (for logs).
  std::string current_endpoint() const;

 private:
  struct endpoint;
  explicit etcd_client(etcd_settings settings);
  // POSTs `json` to `path` on the first endpoint that answers (starting at
  // the one that answered last); the 200 body or why not.
  result<std::string> call(const char* path, std::string json);

  etcd_settings settings_;
  std::vector<std::unique_ptr<endpoint>> endpoints_;
  size_t current_ = 0;
  mutable std::mutex mutex_;
};

// The first key after every key starting with `key_prefix` (etcd's range_end
// of a prefix query).
std::string prefix_end(std::string key_prefix);

}  // namespace billing::cluster::etcd
