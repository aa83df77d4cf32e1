#include "cluster/replication/replicator_state.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <algorithm>
#include <functional>
#include <set>

#include "actors/errors.hpp"
#include "cluster/fence.hpp"
#include "observability/log.hpp"

#include "cluster/replication/shard_data.hpp"
#include "storage/keys.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<billing::cluster::replication::logged_batch>)

namespace billing::cluster::replication {
namespace {

using namespace detail;
using clock = std::chrono::steady_clock;

// ---- placement, commits, ticks ----

// The first placement after a start on an empty store: the shards it lists
// this node in were held here before the disk was lost.
void mark_lost_shards(pointer self, const std::vector<shard_assignment>& shards) {
  auto& st = self->state;
  storage::write_set marks;
  std::vector<uint32_t> lost;
  for (uint32_t shard_number = 0; shard_number < shards.size(); ++shard_number) {
    const auto& replicas = shards[shard_number].replicas;
    if (std::find(replicas.begin(), replicas.end(), st.settings.self_id) == replicas.end())
      continue;
    lost.push_back(shard_number);
    marks.mark_unsynced(shard_number);
  }
  marks.clear_unsynced_pending();
  if (status done = st.store->commit_and_wait(std::move(marks)); !done.ok()) {
    // Every shard stays unsynced in memory; the pending marker stays too.
    observability::log_warn("replication: recording the shards this empty store lost: {}",
                            done.message());
    for (uint32_t shard_number = 0; shard_number < shards.size(); ++shard_number) {
      st.unsynced.insert(shard_number);
    }
    return;
  }
  st.unsynced.insert(lost.begin(), lost.end());
  if (!lost.empty()) {
    observability::log_info(
        "replication: started on an empty store: {} shards listed this node; it counts toward "
        "their majority once it has caught up",
        lost.size());
  }
}

void on_placement(pointer self, const std::vector<member>& members,
                  const std::vector<shard_assignment>& shards) {
  auto& st = self->state;
  if (!st.placement_seen) {
    st.placement_seen = true;
    if (st.settings.store_was_empty) mark_lost_shards(self, shards);
  }
  for (const auto& m : members) {
    if (m.node_id == st.settings.self_id) continue;
    auto& link = st.peers[m.node_id];
    if (!(link.info == m)) {
      link.info = m;
      link.replicator = nullptr;
      link.retry_at = {};
    }
  }
  for (uint32_t shard_number = 0; shard_number < shards.size(); ++shard_number) {
    const auto& assignment = shards[shard_number];
    if (assignment.epoch == 0 || assignment.replicas.empty()) continue;
    if (!admit_epoch(self, shard_number, assignment.epoch)) continue;
    if (assignment.leader() == st.settings.self_id) {
      start_leading(self, shard_number, assignment);
    } else if (st.led.count(shard_number) != 0) {
      step_down(self, shard_number, fmt::format("node {} leads it now", assignment.leader()));
    }
  }
}

void on_logged(pointer self, logged_batch& batch) {
  auto& st = self->state;
  std::set<uint32_t> touched;
  for (auto& logged : batch.entries) {
    auto found = st.led.find(logged.shard);
    if (found == st.led.end() || found->second.epoch != logged.entry.epoch) continue;
    found->second.last = {logged.entry.epoch, logged.entry.seq};
    found->second.tail.push_back(std::move(logged.entry));
    touched.insert(logged.shard);
  }
  for (auto& wait : batch.waits) {
    auto found = st.led.find(wait.shard);
    if (found == st.led.end() || found->second.epoch != wait.epoch) {
      st.gauges->majority_timeouts++;
      if (wait.on_done) {
        wait.on_done(status{status_code::deadline_exceeded,
                            fmt::format("stored on this node, which no longer leads shard {}; "
                                        "retry",
                                        wait.shard)});
      }
      continue;
    }
    found->second.waits.push_back({std::move(wait), clock::now() + st.settings.ack_timeout});
    touched.insert(found->first);
  }
  for (const uint32_t shard_number : touched) {
    advance_commit(self, st.led.at(shard_number));
    pump(self, shard_number);
  }
}

void on_tick(pointer self) {
  auto& st = self->state;
  const auto now = clock::now();
  int64_t lagging = 0;
  for (auto& [shard_number, shard] : st.led) {
    if (!shard.recovered) continue;
    while (!shard.waits.empty() && shard.waits.front().deadline <= now) {
      auto done = std::move(shard.waits.front().wait.on_done);
      shard.waits.pop_front();
      st.gauges->majority_timeouts++;
      if (done) {
        done(status{status_code::deadline_exceeded,
                    fmt::format("stored on this node but not on a majority of shard {}'s "
                                "replicas within {} ms; retry",
                                shard_number, st.settings.ack_timeout.count())});
      }
    }
    for (const auto& [node, state] : shard.followers) {
      lagging += (!state.known || state.match < shard.last.seq) ? 1 : 0;
    }
  }
  st.gauges->lagging_followers = lagging;
  std::vector<uint32_t> shards;
  for (const auto& [shard_number, shard] : st.led) shards.push_back(shard_number);
  for (const uint32_t shard_number : shards) {
    auto found = st.led.find(shard_number);
    if (found == st.led.end()) continue;
    if (found->second.recovered) {
      pump(self, shard_number);
    } else {
      recover(self, shard_number);
    }
  }
}

// ---- follower ----

// Runs one install step on a thread of its own (they block on the disk).
caf::behavior install_worker(caf::event_based_actor* self,
                             std::shared_ptr<storage::ledger_store> store,
                             shard_selector selector) {
  return {
      [self, store, selector](install_atom, uint8_t phase,
                              std::vector<storage::stored_record>& records,
                              log_position at) -> caf::result<log_position> {
        status done;
        if (phase == install_begin) done = erase_shard(*store, selector);
        if (phase == install_records) done = put_records(*store, records);
        if (phase == install_end) done = finish_install(*store, selector, at);
        self->quit();
        if (!done.ok()) return actors::to_error(done);
        return at;
      },
  };
}

// What a replica answers for a shard it holds only part of (installing).
caf::error install_unfinished() {
  return actors::to_error(status{status_code::unavailable,
                                 "this replica's snapshot install of the shard has not finished"});
}

struct pending_apply {
  caf::response_promise promise;
  uint32_t shard = 0;
  log_position reached;
  bool syncs = false;  // the write also clears the shard's unsynced marker
};

// Adds the shard of every `tag` marker stored (replication_log.hpp) to `shards`.
status load_shard_markers(const storage::ledger_store& store, std::string_view tag,
                          std::optional<uint32_t> (*shard_of_key)(std::string_view),
                          std::set<uint32_t>& shards) {
  const std::string prefix(tag);
  return store.scan_range(storage::replication_family, prefix,
                          storage::keys::prefix_successor(prefix),
                          [&](std::string_view key, std::string_view) {
                            if (auto shard = shard_of_key(key)) shards.insert(*shard);
                            return true;
                          });
}

// The unsynced and installing markers a previous run left, and whether it
// started on an empty store and stopped before reading the placement.
void load_sync_state(replicator_state& st) {
  status scanned = load_shard_markers(*st.store, storage::replication_log::unsynced_tag,
                                      &storage::replication_log::unsynced_shard, st.unsynced);
  // Read even when the first scan failed: it must not hide an unfinished install.
  status scanned_installs =
      load_shard_markers(*st.store, storage::replication_log::installing_tag,
                         &storage::replication_log::installing_shard, st.installing);
  if (!scanned_installs.ok()) scanned = scanned_installs;
  if (!st.installing.empty()) {
    observability::log_warn(
        "replication: the last run left the snapshot install of {} shard(s) unfinished ({}): "
        "each serves nothing until a new snapshot is installed",
        st.installing.size(), fmt::join(st.installing, " "));
  }
  auto pending = st.store->get(storage::replication_family,
                               std::string(storage::replication_log::unsynced_pending_key));
  if (!scanned.ok() || !pending.ok()) {
    observability::log_warn(
        "replication: reading the unsynced markers failed; every shard is "
        "treated as unsynced");
    st.settings.store_was_empty = true;
    return;
  }
  if (pending.value()) st.settings.store_was_empty = true;
  if (st.settings.store_was_empty && !pending.value()) {
    storage::write_set mark;
    mark.mark_unsynced_pending();
    if (status done = st.store->commit_and_wait(std::move(mark)); !done.ok()) {
      observability::log_warn("replication: {}", done.message());
    }
  }
}

}  // namespace

caf::actor spawn_replicator(caf::actor_system& system, std::shared_ptr<storage::ledger_store> store,
                            std::shared_ptr<actors::shard_terms> terms,
                            replicator_settings settings,
                            std::shared_ptr<replication_gauges> gauges) {
  auto behavior = [](pointer self, std::shared_ptr<storage::ledger_store> store,
                     std::shared_ptr<actors::shard_terms> terms, replicator_settings settings,
                     std::shared_ptr<replication_gauges> gauges) -> caf::behavior {
    auto& st = self->state;
    st.store = std::move(store);
    st.terms = std::move(terms);
    st.settings = std::move(settings);
    st.gauges = std::move(gauges);
    load_sync_state(st);
    auto applies = std::make_shared<std::map<uint64_t, pending_apply>>();
    auto next_apply = std::make_shared<uint64_t>(0);
    self->set_down_handler([self](caf::down_msg& down) {
      for (auto& [node, link] : self->state.peers) {
        if (link.replicator && link.replicator.address() == down.source) forget_peer(self, node);
      }
    });
    self->send(self, tick_atom::value);
    return {
        [self](placement_atom, const std::vector<member>& members,
               const std::vector<shard_assignment>& shards) {
          on_placement(self, members, shards);
        },
        [self](logged_atom, std::shared_ptr<logged_batch>& batch) { on_logged(self, *batch); },
        [self](tick_atom) {
          on_tick(self);
          self->delayed_send(self, self->state.settings.tick, tick_atom::value);
        },
        [self, applies, next_apply](append_atom, uint32_t shard, uint64_t epoch, log_position prev,
                                    std::vector<log_entry>& entries,
                                    uint64_t sync_floor) -> caf::result<uint8_t, log_position> {
          auto& st = self->state;
          if (!admit_epoch(self, shard, epoch)) {
            return {append_stale, local_position(self, shard)};
          }
          if (st.led.count(shard) != 0 || st.busy.count(shard) != 0) {
            return {append_mismatch,
                    st.led.count(shard) != 0 ? st.led.at(shard).last : local_position(self, shard)};
          }
          const log_position mine = local_position(self, shard);
          if (st.installing.count(shard) != 0) return {append_needs_snapshot, mine};
          if (prev != mine) return {append_mismatch, mine};
          const log_position reached =
              entries.empty() ? mine : log_position{entries.back().epoch, entries.back().seq};
          // Our log is the leader's up to `reached`: past its floor we hold
          // everything it acknowledged.
          const bool syncs = st.unsynced.count(shard) != 0 && reached.seq >= sync_floor;
          if (entries.empty() && !syncs) return {append_applied, mine};
          const uint64_t id = ++*next_apply;
          const uint64_t count = entries.size();
          auto promise = self->make_response_promise();
          (*applies)[id] = {promise, shard, reached, syncs};
          st.busy.insert(shard);
          storage::write_set writes;
          if (!entries.empty()) writes.apply_as_follower(shard, std::move(entries));
          if (syncs) writes.mark_synced(shard);
          auto me = caf::actor_cast<caf::actor>(self);
          st.store->commit(std::move(writes), [me, id, count](status done) {
            caf::anon_send(me, logged_atom::value, id, count, static_cast<uint8_t>(done.code()),
                           done.message());
          });
          return promise;
        },
        [self, applies](logged_atom, uint64_t id, uint64_t count, uint8_t code,
                        const std::string& message) {
          auto& st = self->state;
          auto found = applies->find(id);
          if (found == applies->end()) return;
          auto pending = std::move(found->second);
          applies->erase(found);
          st.busy.erase(pending.shard);
          if (code == 0) {
            st.positions[pending.shard] = pending.reached;
            st.gauges->entries_applied += count;
            if (pending.syncs) {
              st.unsynced.erase(pending.shard);
              observability::log_info("replication: shard {}: caught up, synced at {}.{}",
                                      pending.shard, pending.reached.epoch, pending.reached.seq);
            }
            pending.promise.deliver(append_applied, pending.reached);
          } else {
            st.positions.erase(pending.shard);
            observability::log_warn("replication: shard {}: applying entries failed: {}",
                                    pending.shard, message);
            pending.promise.deliver(append_mismatch, local_position(self, pending.shard));
          }
        },
        [self](position_atom, uint32_t shard, uint64_t epoch) -> caf::result<log_position, bool> {
          if (!admit_epoch(self, shard, epoch)) {
            return refusal(shard, epoch, self->state.promised[shard]);
          }
          self->state.positions.erase(shard);
          return {local_position(self, shard), self->state.unsynced.count(shard) == 0};
        },
        [self](fetch_atom, uint32_t shard, uint64_t epoch,
               uint64_t from) -> caf::result<std::vector<log_entry>> {
          if (!admit_epoch(self, shard, epoch)) {
            return refusal(shard, epoch, self->state.promised[shard]);
          }
          if (self->state.installing.count(shard) != 0) {
            return install_unfinished();
          }
          auto read = self->state.store->read_log(shard, from, self->state.settings.append_entries,
                                                  self->state.settings.append_bytes);
          if (!read.ok()) return actors::to_error(read.error());
          return std::move(read).value();
        },
        [self](install_atom atom, uint32_t shard, uint64_t epoch, uint8_t phase,
               std::vector<storage::stored_record>& records,
               log_position at) -> caf::result<log_position> {
          auto& st = self->state;
          if (!admit_epoch(self, shard, epoch)) return refusal(shard, epoch, st.promised[shard]);
          // Before anything is marked: a node just started may hear from a
          // leader before it has read the shard count from the placement.
          const shard_selector selector = selector_of(self, shard);
          if (status usable = selector.usable(); !usable.ok()) {
            observability::log_info("replication: snapshot refused (the leader retries): {}",
                                    usable.message());
            return actors::to_error(usable);
          }
          if (phase == install_begin) {
            st.busy.insert(shard);
            st.positions.erase(shard);
            st.unsynced.insert(shard);    // erase_shard marks it durably first,
            st.installing.insert(shard);  // and this
          }
          auto promise = self->make_response_promise<log_position>();
          auto worker = self->system().spawn<caf::detached>(install_worker, st.store, selector);
          self->request(worker, caf::infinite, atom, phase, std::move(records), at)
              .then(
                  [self, promise, shard, phase](log_position installed) mutable {
                    if (phase == install_end) {
                      self->state.unsynced.erase(shard);  // finish_install cleared it
                      self->state.installing.erase(shard);
                      self->state.busy.erase(shard);
                      self->state.positions[shard] = installed;
                      self->state.gauges->snapshots_installed++;
                      observability::log_info(
                          "replication: shard {}: snapshot installed (log at {}.{})", shard,
                          installed.epoch, installed.seq);
                    }
                    promise.deliver(installed);
                  },
                  [self, promise, shard](caf::error& error) mutable {
                    self->state.busy.erase(shard);
                    self->state.positions.erase(shard);
                    promise.deliver(std::move(error));
                  });
          return promise;
        },
        [self](pull_atom, uint32_t shard, uint64_t epoch,
               caf::actor& requester) -> caf::result<log_position> {
          auto& st = self->state;
          if (!admit_epoch(self, shard, epoch)) return refusal(shard, epoch, st.promised[shard]);
          if (st.installing.count(shard) != 0) {
            return install_unfinished();
          }
          const shard_selector selector = selector_of(self, shard);
          if (status usable = selector.usable(); !usable.ok()) return actors::to_error(usable);
          snapshot_job job{st.store,
                           selector,
                           epoch,
                           std::move(requester),
                           st.settings.peer_timeout * 10,
                           st.settings.snapshot_chunk_bytes};
          auto sender = self->system().spawn<caf::detached>(snapshot_sender, std::move(job));
          st.gauges->snapshots_sent++;
          auto promise = self->make_response_promise<log_position>();
          self->request(sender, caf::infinite, snapshot_atom::value)
              .then([promise](log_position at) mutable { promise.deliver(at); },
                    [promise](caf::error& error) mutable { promise.deliver(std::move(error)); });
          return promise;
        },
    };
  };
  return system.spawn(behavior, std::move(store), std::move(terms), std::move(settings),
                      std::move(gauges));
}

namespace {

class actor_sink final : public storage::replication_sink {
 public:
  actor_sink(caf::actor replicator, std::shared_ptr<const actors::shard_terms> terms)
      : replicator_(std::move(replicator)), terms_(std::move(terms)) {}

  bool leads(uint32_t shard, uint64_t epoch) const override {
    return epoch != 0 && terms_->served_epoch(shard) == epoch;
  }

  void committed(std::vector<storage::logged_entry> entries,
                 std::vector<storage::majority_wait> waits) override {
    auto batch = std::make_shared<logged_batch>(logged_batch{std::move(entries), std::move(waits)});
    caf::anon_send(replicator_, logged_atom::value, std::move(batch));
  }

 private:
  caf::actor replicator_;
  std::shared_ptr<const actors::shard_terms> terms_;
};

}  // namespace

std::shared_ptr<storage::replication_sink> make_sink(
    caf::actor replicator, std::shared_ptr<const actors::shard_terms> terms) {
  return std::make_shared<actor_sink>(std::move(replicator), std::move(terms));
}

}  // namespace billing::cluster::replication
