#include "cluster/etcd/coordinator.hpp"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>

#include "cluster/etcd/records.pb.h"
#include "cluster/fence.hpp"
#include "cluster/handover.hpp"
#include "cluster/node_router.hpp"
#include "cluster/replication/replicator.hpp"
#include "observability/log.hpp"

namespace billing::cluster::etcd {
namespace {

constexpr const char* kMembers = "members/";
constexpr const char* kShards = "shards/";
constexpr const char* kShardCount = "shard_count";
// etcd's default --max-txn-ops is 128.
constexpr size_t kPutsPerTxn = 64;

std::string shard_key(uint32_t shard) {
  return fmt::format("{}{:05}", kShards, shard);
}

std::string encode_shard(const shard_assignment& assignment) {
  ShardRecord record;
  for (const auto& replica : assignment.replicas) record.add_replicas(replica);
  record.set_epoch(assignment.epoch);
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(record, &json);
  return json;
}

std::optional<shard_assignment> decode_shard(const std::string& value) {
  ShardRecord record;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(value, &record, options).ok()) {
    return std::nullopt;
  }
  return shard_assignment{{record.replicas().begin(), record.replicas().end()}, record.epoch()};
}

std::string describe(const std::vector<member>& members) {
  std::string text;
  for (const auto& m : members) {
    text += fmt::format("{}{}@{}:{}", text.empty() ? "" : ",", m.node_id, m.host, m.port);
  }
  return text;
}

}  // namespace

std::string encode_member(const member& m, const std::string& gateway_address) {
  MemberRecord record;
  record.set_node_id(m.node_id);
  record.set_cluster_host(m.host);
  record.set_cluster_port(m.port);
  record.set_gateway(gateway_address);
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(record, &json);
  return json;
}

result<member> decode_member(const std::string& value) {
  MemberRecord record;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(value, &record, options).ok() ||
      record.node_id().empty() || record.cluster_host().empty() || record.cluster_port() == 0 ||
      record.cluster_port() > 65535) {
    return status{status_code::invalid_argument,
                  fmt::format("not a member record: {}", value.substr(0, 200))};
  }
  return member{record.node_id(), record.cluster_host(),
                static_cast<uint16_t>(record.cluster_port())};
}

coordinator::coordinator(std::shared_ptr<etcd_client> etcd, coordinator_settings settings,
                         actors::directory_actor router, caf::actor handover, caf::actor fence,
                         std::shared_ptr<etcd_gauges> gauges)
    : etcd_(std::move(etcd)),
      settings_(std::move(settings)),
      router_(std::move(router)),
      handover_(std::move(handover)),
      fence_(std::move(fence)),
      gauges_(std::move(gauges)),
      last_members_{settings_.self},
      unreachable_("etcd not asked yet"),
      thread_([this](std::stop_token stop) { run(std::move(stop)); }) {}

coordinator::~coordinator() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

bool coordinator::wait_registered(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [this] { return registered_; });
}

std::string coordinator::readiness() const {
  std::lock_guard lock(mutex_);
  return unreachable_;
}

void coordinator::run(std::stop_token stop) {
  std::mutex sleeping;
  std::condition_variable_any wake;
  while (!stop.stop_requested()) {
    tick();
    std::unique_lock lock(sleeping);
    wake.wait_for(lock, stop, settings_.poll_interval, [] { return false; });
  }
}

void coordinator::failed(const status& why) {
  gauges_->errors++;
  std::lock_guard lock(mutex_);
  if (unreachable_.empty()) {
    observability::log_warn(
        "etcd unreachable ({}): keeping the last known members [{}] until it answers",
        why.message(), describe(last_members_));
  }
  unreachable_ = why.message();
  gauges_->reachable = 0;
}

void coordinator::advertise_gateway(std::string address) {
  std::lock_guard lock(mutex_);
  settings_.gateway_address = std::move(address);
  gateway_changed_ = true;
}

bool coordinator::ensure_registered() {
  std::string gateway;
  bool rewrite = false;
  {
    std::lock_guard lock(mutex_);
    gateway = settings_.gateway_address;
    rewrite = std::exchange(gateway_changed_, false);
  }
  if (lease_ != 0) {
    const auto sent = std::chrono::steady_clock::now();
    auto ttl = etcd_->keep_alive(lease_);
    if (ttl.ok() && ttl.value() > 0 && settings_.terms) {
      // etcd keeps the lease at least ttl seconds from the renewal, which
      // left here at `sent`: until then no other node can take our shards.
      settings_.terms->set_lease_until(sent + std::chrono::milliseconds{ttl.value() * 750});
    }
    if (!ttl.ok()) {
      failed(ttl.error());
      if (rewrite) advertise_gateway(gateway);
      return false;
    }
    if (ttl.value() > 0 && rewrite) {
      auto put = etcd_->put(kMembers + settings_.self.node_id,
                            encode_member(settings_.self, gateway), lease_);
      if (!put.ok()) {
        failed(put.error());
        advertise_gateway(gateway);
        return false;
      }
    }
    if (ttl.value() > 0) return true;
    observability::log_warn("etcd: the lease of node {} expired; registering again",
                            settings_.self.node_id);
    gauges_->leases_lost++;
    lease_ = 0;
  }
  auto lease = etcd_->grant_lease(settings_.lease_ttl_seconds);
  if (!lease.ok()) {
    failed(lease.error());
    return false;
  }
  auto put = etcd_->put(kMembers + settings_.self.node_id, encode_member(settings_.self, gateway),
                        lease.value());
  if (!put.ok()) {
    failed(put.error());
    (void)etcd_->revoke_lease(lease.value());
    return false;
  }
  lease_ = lease.value();
  observability::log_info("etcd: node {} registered at {} (lease {:x}, TTL {} s)",
                          settings_.self.node_id, etcd_->current_endpoint(), lease_,
                          settings_.lease_ttl_seconds);
  return true;
}

bool coordinator::tick() {
  // Known before the node registers: a leader that reaches it may send it a
  // shard's snapshot at once, and the replica selects the shard's records by
  // the count. (It was set only after a reconcile succeeded, which a
  // concurrent placement change can delay by a poll interval; the replicator
  // refuses snapshots until it is set.)
  const uint32_t count = shard_count();
  if (count == 0) return false;
  if (settings_.terms) settings_.terms->set_shard_count(count);
  if (!ensure_registered()) return false;
  auto range = etcd_->get_prefix(kMembers);
  if (!range.ok()) {
    failed(range.error());
    return false;
  }
  std::vector<member> members;
  for (const auto& kv : range.value().kvs) {
    auto decoded = decode_member(kv.value);
    if (!decoded.ok()) {
      observability::log_warn("etcd: {}: {}", kv.key, decoded.error().message());
      continue;
    }
    members.push_back(std::move(decoded).value());
  }
  // Our own registration is in force (the lease was just renewed), even if a
  // read raced with its re-creation.
  if (std::none_of(members.begin(), members.end(),
                   [&](const member& m) { return m.node_id == settings_.self.node_id; })) {
    members.push_back(settings_.self);
  }
  std::sort(members.begin(), members.end(),
            [](const member& a, const member& b) { return a.node_id < b.node_id; });
  auto shards = reconcile(members);
  if (!shards) return false;
  gauges_->members = static_cast<int64_t>(members.size());
  gauges_->reachable = 1;
  if (members != last_members_ || *shards != last_shards_) {
    if (members != last_members_) {
      observability::log_info("cluster: members now [{}] (were [{}])", describe(members),
                              describe(last_members_));
      gauges_->member_changes++;
    }
    int64_t led = 0;
    for (const auto& shard : *shards) led += shard.leader() == settings_.self.node_id ? 1 : 0;
    gauges_->shards_led = led;
    // The fence first: by the time peers route with the new epochs, it
    // accepts them (a newer epoch is accepted anyway).
    caf::anon_send(fence_, shards_atom::value, *shards);
    if (settings_.replicator) {
      caf::anon_send(settings_.replicator, replication::placement_atom::value, members, *shards);
    }
    send_members(router_, members, *shards, false);
    handover_members(handover_, members, *shards, false);
    last_shards_ = *shards;
  }
  std::lock_guard lock(mutex_);
  if (!unreachable_.empty() && registered_) {
    observability::log_info("etcd reachable again at {}", etcd_->current_endpoint());
  }
  last_members_ = std::move(members);
  unreachable_.clear();
  registered_ = true;
  changed_.notify_all();
  return true;
}

uint32_t coordinator::shard_count() {
  if (shard_count_ != 0) return shard_count_;
  // Fixed when the cluster is created: the first node writes it, the
  // others (and later runs) read it.
  auto created = etcd_->put_all_if({{kShardCount, std::to_string(settings_.shards), 0}});
  if (!created.ok()) {
    failed(created.error());
    return 0;
  }
  auto stored = etcd_->get(kShardCount);
  if (!stored.ok() || stored.value().kvs.empty()) {
    if (!stored.ok()) failed(stored.error());
    return 0;
  }
  const uint32_t count =
      static_cast<uint32_t>(std::strtoul(stored.value().kvs[0].value.c_str(), nullptr, 10));
  if (count == 0) {
    observability::log_error("etcd: {}{} is not a shard count", etcd_->settings().prefix,
                             kShardCount);
    return 0;
  }
  if (count != settings_.shards) {
    observability::log_warn("cluster: the cluster has {} shards; --shards={} is ignored", count,
                            settings_.shards);
  }
  shard_count_ = count;
  return count;
}

std::optional<std::vector<shard_assignment>> coordinator::reconcile(
    const std::vector<member>& members) {
  const uint32_t count = shard_count();
  if (count == 0) return std::nullopt;
  auto range = etcd_->get_prefix(kShards);
  if (!range.ok()) {
    failed(range.error());
    return std::nullopt;
  }
  std::vector<stored_shard> current(count);
  for (const auto& kv : range.value().kvs) {
    const auto number =
        std::strtoul(kv.key.c_str() + std::char_traits<char>::length(kShards), nullptr, 10);
    auto decoded = decode_shard(kv.value);
    if (number >= count || !decoded) continue;  // rewritten by the plan below
    current[number] = {std::move(*decoded), kv.mod_revision};
  }
  auto plan =
      plan_placement(current, members, settings_.replication_factor, settings_.max_moves_per_poll);
  for (size_t first = 0; first < plan.size(); first += kPutsPerTxn) {
    std::vector<cas_put> puts;
    for (size_t i = first; i < std::min(plan.size(), first + kPutsPerTxn); ++i) {
      puts.push_back(
          {shard_key(plan[i].shard), encode_shard(plan[i].next), plan[i].expected_mod_revision});
    }
    auto swapped = etcd_->put_all_if(puts);
    if (!swapped.ok()) {
      failed(swapped.error());
      return std::nullopt;
    }
    // Lost a race with another node: what it wrote is read on the next poll.
    if (!swapped.value()) continue;
    for (size_t i = first; i < std::min(plan.size(), first + kPutsPerTxn); ++i) {
      current[plan[i].shard].assignment = plan[i].next;
      gauges_->placement_changes++;
    }
  }
  if (!plan.empty()) {
    observability::log_info("cluster: placement: {} shard change(s) planned for [{}]", plan.size(),
                            describe(members));
  }
  std::vector<shard_assignment> shards;
  shards.reserve(count);
  for (auto& shard : current) shards.push_back(std::move(shard.assignment));
  return shards;
}

bool coordinator::leave() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
  std::vector<member> others;
  for (const auto& m : last_members_) {
    if (m.node_id != settings_.self.node_id) others.push_back(m);
  }
  if (others.empty()) return false;
  if (lease_ != 0) {
    if (status revoked = etcd_->revoke_lease(lease_); !revoked.ok()) {
      observability::log_warn("etcd: cannot revoke the lease ({}); it expires in {} s",
                              revoked.message(), settings_.lease_ttl_seconds);
    }
    lease_ = 0;
  }
  // Re-place this node's shards now (new leaders, new epochs), so that what
  // it still forwards and hands over carries epochs the new leaders accept.
  auto shards = reconcile(others);
  if (shards) last_shards_ = std::move(*shards);
  observability::log_info("cluster: node {} leaves; its customers go to [{}]",
                          settings_.self.node_id, describe(others));
  caf::anon_send(fence_, shards_atom::value, last_shards_);
  send_members(router_, others, last_shards_, true);
  handover_members(handover_, others, last_shards_, true);
  return true;
}

}  // namespace billing::cluster::etcd
