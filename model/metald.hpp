// metald's cumulative-counter samples turned into usage windows: the pure,
// exact rules behind billing.v1.BillingService (protocol/billing/v1/metald.proto).
//
// Per VM we keep a durable state (the watermark): the newest sample applied
// and its counters. A batch adds only samples newer than the watermark, as
// the exact deltas of the cumulative counters and the exact integral of the
// memory gauge, in ONE window [watermark, newest sample). See README.md
// ("metald API") for the guarantees this gives.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/status.hpp"
#include "model/trace_parent.hpp"
#include "model/usage_window.hpp"

namespace billing::model {

// One sample as metald sends it (counters validated non-negative).
struct metald_sample {
  int64_t timestamp_ns = 0;
  uint64_t cpu_time_nanos = 0;      // cumulative
  uint64_t memory_usage_bytes = 0;  // gauge
  uint64_t disk_read_bytes = 0;     // cumulative
  uint64_t disk_write_bytes = 0;    // cumulative
  uint64_t network_rx_bytes = 0;    // cumulative
  uint64_t network_tx_bytes = 0;    // cumulative
  friend bool operator==(const metald_sample&, const metald_sample&) = default;
};

// The durable per-VM state (storage family vm_state).
struct vm_state {
  // The region the VM's windows are filed under (set when first seen).
  std::string region;
  // The watermark: every sample at or before watermark_ns has been applied
  // (or deliberately skipped); `last` holds the cumulative counters against
  // which the next sample's deltas are taken. kNoTimestamp: nothing yet.
  int64_t watermark_ns = kNoTimestamp;
  metald_sample last;
  // Whether last.memory_usage_bytes is a real reading (false right after a
  // start notification, before any sample).
  bool gauge_known = false;
  // The memory integral's remainder below one byte-second, in units of
  // half byte-nanoseconds (< 2e9), carried so that the sum over any batching
  // equals the floor of the exact integral.
  uint64_t memory_remainder = 0;
  // Session: started at session_start_ns (kNoTimestamp: unknown), ended at
  // session_end_ns (kNoTimestamp: open). session_end_by_timeout says the end
  // came from a silent metald instance rather than NotifyVmStopped.
  int64_t session_start_ns = kNoTimestamp;
  int64_t session_end_ns = kNoTimestamp;
  bool session_end_by_timeout = false;
  // The VM's sampling interval as learned from its samples (0: not yet):
  // metald samples every 100 ms (600 per batch) or every 5 minutes (one per
  // batch), so a gap is a hole longer than this VM's cadence allows, not a
  // fixed time.
  int64_t cadence_ns = 0;
  // A NotifyVmStopped after the last sample is held open for the VM's final
  // batch, which metald may deliver after the stop: until finish_stop, the
  // session is closed (at session_end_ns) but its closing window is not
  // written yet, so samples stamped up to the stop are still billed, once.
  bool stop_pending = false;
  // The newest real sample applied (kNoTimestamp: none since the session
  // began): tells a late sample that was never seen from one that was.
  int64_t last_sample_ns = kNoTimestamp;

  bool session_open() const { return session_end_ns == kNoTimestamp; }
  friend bool operator==(const vm_state&, const vm_state&) = default;
};

// A metald instance as its heartbeats describe it (storage family
// metald_instances).
struct metald_instance {
  int64_t last_heartbeat_ns = kNoTimestamp;
  // The VMs its last heartbeat listed as active.
  std::vector<std::string> active_vms;
  // Silent past the timeout: its VMs' sessions were ended at last_heartbeat_ns.
  bool timed_out = false;
  friend bool operator==(const metald_instance&, const metald_instance&) = default;
};

// A VM we believe runs, as GetActiveBillingSessions reports it.
struct metald_session {
  std::string vm_id;
  std::string customer_id;
  int64_t start_ns = kNoTimestamp;
  int64_t last_sample_ns = kNoTimestamp;
};

// A stretch of a VM's time without samples: recorded, shown by
// GetBillingWindow, never billed differently (counters are cumulative).
struct metald_gap {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  friend bool operator==(const metald_gap&, const metald_gap&) = default;
};

// What a batch adds: how many samples were new, the usage window (if the new
// samples span any time), and the gap before them, if any.
struct metald_usage {
  uint32_t new_samples = 0;
  // Samples stamped at or before a stop whose closing window was already
  // written (they arrived after finish_stop): not billed, and said so.
  uint32_t after_closed_stop = 0;
  std::optional<usage_window> window;
  std::optional<metald_gap> gap;
};

// Applies `samples` (any order; validated) of `vm_id` to `state`. Samples at
// or before the watermark are dropped (idempotency by (vm, timestamp)); of
// two new samples with one timestamp the first in the batch counts. The
// window, when there is one, carries customer, region and vm ids.
// out_of_range (state unchanged) if a sum would exceed 2^64-1.
// When `gap_after_ns` > 0, a hole of at least gap_threshold_ns between the
// watermark and the first new sample of an open session is reported as a gap.
// The cadence is learned as the batch's smallest interval between samples,
// or, for a batch of one sample, the hole before it unless that is a gap
// (the first hole of a VM only teaches the cadence).
result<metald_usage> apply_samples(vm_state& state, const std::string& customer_id,
                                   const std::string& vm_id, std::vector<metald_sample> samples,
                                   int64_t gap_after_ns = 0);

// How long a hole in the VM's samples must be to be a gap: at least
// `gap_after_ns` (--expected-cadence-seconds) and at least one and a half of
// the VM's learned cadence (one sample missing), so a slow sampler's regular
// interval is never a gap.
int64_t gap_threshold_ns(const vm_state& state, int64_t gap_after_ns);

// NotifyVmStarted at start_ns: opens a session whose counters start from zero.
// A held stop must be finished first (apply_op does).
// Returns false (and changes nothing) when it adds nothing: a duplicate, or a
// start at or before what was already applied.
bool apply_start(vm_state& state, int64_t start_ns);

// NotifyVmStopped at stop_ns: closes the session. A stop after the last
// sample is held (vm_state::stop_pending) for samples stamped up to it that
// are still on their way; finish_stop then writes the window from the last
// sample to the stop (no counter usage, the memory gauge held). A duplicate
// stop, or one at or before the watermark of a closed session, changes nothing.
result<metald_usage> apply_stop(vm_state& state, const std::string& customer_id,
                                const std::string& vm_id, int64_t stop_ns);

// Writes the closing window of a pending stop (see apply_stop); nothing when
// none is pending.
result<metald_usage> finish_stop(vm_state& state, const std::string& customer_id,
                                 const std::string& vm_id);

// The heartbeat timeout of the VM's metald instance: an open session ends at
// the instance's last heartbeat `end_ns` (recorded as by timeout), with the
// same closing window as a stop. Samples that resume reopen it.
result<metald_usage> apply_timeout(vm_state& state, const std::string& customer_id,
                                   const std::string& vm_id, int64_t end_ns);

// One thing metald told us about a VM, as a customer ledger applies it.
enum class metald_op_kind : uint8_t {
  samples = 1,
  start = 2,
  stop = 3,
  timeout = 4,
  gap = 5,
  finish_stop = 6,  // the grace for a stopped VM's final batch is over
};
struct metald_op {
  metald_op_kind kind = metald_op_kind::samples;
  std::string customer_id;
  // The region a VM seen for the first time is filed under.
  std::string region;
  std::string vm_id;
  int64_t at_ns = 0;         // start, stop or timeout instant; a gap's start
  int64_t until_ns = 0;      // a gap's end
  int64_t gap_after_ns = 0;  // samples: see apply_samples
  std::vector<metald_sample> samples;
  // The span of the call that delivers it (local only, as batch_meta::trace).
  trace_parent trace = {};
};

// Applies `op` to `state` (see the functions above). new_samples counts the
// samples added, or 1 when a lifecycle op changed the state. A gap op
// (NotifyPossibleGap) only reports its gap.
result<metald_usage> apply_op(vm_state& state, const metald_op& op);

// Cuts a window at UTC hour boundaries into windows of at most one hour
// (counters apportioned as the rollups do), so that derived windows of any
// length fit the raw-window queries' lookback.
std::vector<usage_window> split_at_hours(const usage_window& window);

}  // namespace billing::model
