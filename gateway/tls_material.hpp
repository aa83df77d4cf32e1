// The gateway's TLS material, re-read when its files change: SPIRE and
// cert-manager rotate certificates, keys and CA bundles (SPIRE about hourly)
// by rewriting the files, and billingd must follow without a restart and
// without dropping open connections. Each new connection takes the current
// context (a shared_ptr it keeps for its life), so open connections and
// streams go on with the material they shook hands with while new handshakes
// use the new one. Internal to the gateway.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <array>
#include <memory>
#include <mutex>
#include <string>

#include "gateway/connect_server.hpp"
#include "model/status.hpp"

namespace billing::gateway {

class tls_material {
 public:
  // Loads the files of `options`; null when TLS is off; invalid_argument
  // naming the file when one cannot be loaded (at start, that is fatal).
  static result<std::unique_ptr<tls_material>> load(const server_options& options);

  // The context for a new connection: reloaded first when any file changed
  // (size, modification time or inode, so a symlink swap counts). A reload
  // that fails (a file half written, a key not matching its certificate yet)
  // keeps the previous context and is tried again once the files change again.
  std::shared_ptr<boost::asio::ssl::context> current();

  // How many times new material was loaded after the start, for tests and logs.
  uint64_t reloads() const;

 private:
  struct file_stamp {
    unsigned long long device = 0, inode = 0, size = 0;
    long long mtime_ns = 0;
    bool exists = false;
    friend bool operator==(const file_stamp&, const file_stamp&) = default;
  };
  using stamps = std::array<file_stamp, 3>;  // certificate, key, client CA

  explicit tls_material(server_options options) : options_(std::move(options)) {}
  stamps stamp_files() const;

  const server_options options_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  stamps loaded_{};      // the files as they were when context_ was loaded
  stamps last_tried_{};  // the files of the last failed reload, not tried again
  uint64_t reloads_ = 0;
};

// The identity of the verified client certificate of `ssl` (a connection
// after its handshake): its first URI subject alternative name (a SPIFFE ID
// such as spiffe://example.org/metald/us-east-1), else its subject common
// name; "" when the client presented none or it did not verify.
std::string verified_client_identity(const SSL* ssl);

}  // namespace billing::gateway
