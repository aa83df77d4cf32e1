// Live cluster membership in etcd (issue 15). The coordinator registers this
// node under a lease (members/<node id> -> its cluster and gateway
// addresses), renews the lease every poll interval, reads the member set as
// often, and hands every change to the node router and the hand-over, so
// nodes join and leave without restarting the others. A lease that expired
// (etcd lost us for longer than its TTL) is replaced and the node registers
// again. etcd unreachable is a state, not an error: the last known member set
// stays in force, the state is logged once per change and shown by
// readiness() (/readyz) and the gauges (/metrics); nothing waits on etcd but
// this thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor.hpp>

#include "actors/messages.hpp"
#include "actors/shard_terms.hpp"
#include "cluster/etcd/etcd_client.hpp"
#include "cluster/membership.hpp"

namespace billing::cluster::etcd {

struct coordinator_settings {
  member self;                  // node id and the CAF middleman address peers use
  std::string gateway_address;  // this node's Connect gateway, for operators and tools
  int64_t lease_ttl_seconds = 5;
  std::chrono::milliseconds poll_interval{500};
  // Shard placement: the shard count the cluster is created with (the one
  // stored in etcd wins afterwards), replicas per shard, and how many shards
  // with a live leader one node moves per poll at most.
  uint32_t shards = 256;
  uint32_t replication_factor = 1;
  uint32_t max_moves_per_poll = 16;
  // Replicated ledgers (issue 16; unset when not replicated): the table of
  // served shards, told the shard count and how long this node's lease is
  // surely in force; and the replicator, told every member set and placement.
  std::shared_ptr<actors::shard_terms> terms;
  caf::actor replicator;
};

// For /metrics.
struct etcd_gauges {
  std::atomic<int64_t> reachable{0};           // 1 while etcd answers
  std::atomic<uint64_t> errors{0};             // failed etcd exchanges since start
  std::atomic<int64_t> members{0};             // nodes registered (this one included)
  std::atomic<uint64_t> member_changes{0};     // member sets handed to the router since start
  std::atomic<uint64_t> leases_lost{0};        // times the lease expired and was replaced
  std::atomic<int64_t> shards_led{0};          // shards this node leads
  std::atomic<uint64_t> placement_changes{0};  // shard records this node changed by CAS
  std::atomic<uint64_t> fence_refused{0};      // peers' messages refused for a stale epoch
};

class coordinator {
 public:
  coordinator(std::shared_ptr<etcd_client> etcd, coordinator_settings settings,
              actors::directory_actor router, caf::actor handover, caf::actor fence,
              std::shared_ptr<etcd_gauges> gauges);
  ~coordinator();  // stops polling (without leaving: the lease then expires)
  coordinator(const coordinator&) = delete;
  coordinator& operator=(const coordinator&) = delete;

  // Waits until this node is registered and a member set was read, at most
  // `timeout`; false if etcd did not answer in time (polling goes on).
  bool wait_registered(std::chrono::milliseconds timeout);

  // Leaves the cluster: stops polling, deletes the registration (revokes the
  // lease) and tells the router and the hand-over that this node owns
  // nothing now. False, with nothing changed, when no other member is known
  // to take over this node's customers.
  bool leave();

  // The gateway's address once it is bound (port 0 resolved): registered
  // again on the next tick.
  void advertise_gateway(std::string address);

  // "" while etcd answers; otherwise why this node cannot be sure of the
  // member set (for /readyz).
  std::string readiness() const;

 private:
  void run(std::stop_token stop);
  bool tick();
  bool ensure_registered();
  // Reads the placement, makes the changes the member set calls for (CAS),
  // and answers the placement in force; nullopt when etcd failed.
  std::optional<std::vector<shard_assignment>> reconcile(const std::vector<member>& members);
  uint32_t shard_count();
  void failed(const status& why);

  std::shared_ptr<etcd_client> etcd_;
  coordinator_settings settings_;
  actors::directory_actor router_;
  caf::actor handover_;
  caf::actor fence_;
  std::shared_ptr<etcd_gauges> gauges_;
  int64_t lease_ = 0;
  uint32_t shard_count_ = 0;          // as stored in etcd; 0: not read yet
  std::vector<member> last_members_;  // what the router has
  std::vector<shard_assignment> last_shards_;
  mutable std::mutex mutex_;  // guards the fields below
  std::condition_variable_any changed_;
  bool registered_ = false;
  bool gateway_changed_ = false;
  std::string unreachable_;  // "" while reachable
  std::jthread thread_;      // last: started when everything above is ready
};

// members/<node id> records: encoded to and read from protobuf JSON.
std::string encode_member(const member& m, const std::string& gateway_address);
result<member> decode_member(const std::string& value);

}  // namespace billing::cluster::etcd
