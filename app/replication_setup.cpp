#include "app/replication_setup.hpp"

#include "cluster/placement.hpp"
#include "observability/log.hpp"

namespace billing::app {

replication_parts start_replication(caf::actor_system& system, const billingd_config& config,
                                    const std::shared_ptr<storage::ledger_store>& store,
                                    bool store_was_empty) {
  replication_parts parts;
  if (!config.replicated()) return parts;
  parts.terms = std::make_shared<actors::shard_terms>(&cluster::shard_of);
  auto settings = config.replicator_settings();
  settings.store_was_empty = store_was_empty;
  parts.replicator = cluster::replication::spawn_replicator(system, store, parts.terms,
                                                            std::move(settings), parts.gauges);
  store->set_replication_sink(cluster::replication::make_sink(parts.replicator, parts.terms));
  observability::log_info(
      "replicated ledgers: {} replicas per shard, a write is acknowledged by a majority",
      config.replication_factor);
  return parts;
}

void add_replication_figures(const cluster::replication::replication_gauges& gauges,
                             std::vector<std::pair<std::string, int64_t>>& figures) {
  auto add = [&](const char* name, int64_t value) {
    figures.emplace_back(std::string("replication_") + name, value);
  };
  add("shards_led", gauges.shards_led.load());
  add("shards_recovering", gauges.shards_recovering.load());
  add("entries_shipped", static_cast<int64_t>(gauges.entries_shipped.load()));
  add("entries_applied", static_cast<int64_t>(gauges.entries_applied.load()));
  add("majority_timeouts", static_cast<int64_t>(gauges.majority_timeouts.load()));
  add("stale_refused", static_cast<int64_t>(gauges.stale_refused.load()));
  add("snapshots_sent", static_cast<int64_t>(gauges.snapshots_sent.load()));
  add("snapshots_installed", static_cast<int64_t>(gauges.snapshots_installed.load()));
  add("recoveries", static_cast<int64_t>(gauges.recoveries.load()));
  add("lagging_followers", gauges.lagging_followers.load());
}

void add_replication_message_types(caf::actor_system_config& config) {
  config.add_message_type<storage::log_entry>("billing.log_entry")
      .add_message_type<std::vector<storage::log_entry>>("billing.log_entries")
      .add_message_type<storage::log_position>("billing.log_position");
}

}  // namespace billing::app
