#include "model/metald.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "model/calendar.hpp"
#include "model/rollup.hpp"

namespace billing::model {
namespace {

using u128 = unsigned __int128;

// The memory integral is kept in half byte-nanoseconds (the trapezoid rule
// sums (gauge_before + gauge_after) * dt), so one byte-second is this many.
constexpr u128 kHalfByteNanosPerByteSecond = u128{2} * kNanosPerSecond;

// A cumulative counter that went backwards was reset (VM or cgroup restart):
// the new value counts from zero.
uint64_t counter_delta(uint64_t before, uint64_t after) {
  return after >= before ? after - before : after;
}

// The sums a batch adds, with overflow checks.
struct usage_sums {
  uint64_t cpu_time_nanos = 0;
  uint64_t disk_read_bytes = 0;
  uint64_t disk_write_bytes = 0;
  uint64_t network_rx_bytes = 0;
  uint64_t network_tx_bytes = 0;
  uint64_t memory_peak = 0;
  u128 memory_half_byte_nanos = 0;

  bool add_deltas(const metald_sample& before, const metald_sample& after) {
    const std::array<std::pair<uint64_t*, uint64_t>, 5> parts = {{
        {&cpu_time_nanos, counter_delta(before.cpu_time_nanos, after.cpu_time_nanos)},
        {&disk_read_bytes, counter_delta(before.disk_read_bytes, after.disk_read_bytes)},
        {&disk_write_bytes, counter_delta(before.disk_write_bytes, after.disk_write_bytes)},
        {&network_rx_bytes, counter_delta(before.network_rx_bytes, after.network_rx_bytes)},
        {&network_tx_bytes, counter_delta(before.network_tx_bytes, after.network_tx_bytes)},
    }};
    std::array<uint64_t, 5> sums{};
    for (size_t i = 0; i < parts.size(); ++i) {
      if (__builtin_add_overflow(*parts[i].first, parts[i].second, &sums[i])) return false;
    }
    for (size_t i = 0; i < parts.size(); ++i) *parts[i].first = sums[i];
    return true;
  }

  // Trapezoid over [from, to): gauges are at most 2^63 and the spacing below
  // 2^64, so each term is below 2^128 only if gauges are bounded; validation
  // bounds them to max_memory_bytes (64 TiB), leaving ample headroom.
  void add_memory(uint64_t gauge_from, uint64_t gauge_to, int64_t from_ns, int64_t to_ns) {
    memory_half_byte_nanos +=
        (u128{gauge_from} + gauge_to) * static_cast<uint64_t>(to_ns - from_ns);
  }
};

// Fills `window` over [from, to) from the sums and carries the memory
// remainder into `state`; out_of_range when byte-seconds exceed 2^64-1.
status finish_window(vm_state& state, const usage_sums& sums, const std::string& customer_id,
                     const std::string& vm_id, int64_t from_ns, int64_t to_ns,
                     usage_window& window) {
  const u128 memory = sums.memory_half_byte_nanos + state.memory_remainder;
  const u128 byte_seconds = memory / kHalfByteNanosPerByteSecond;
  if (byte_seconds > UINT64_MAX) {
    return {status_code::out_of_range, "memory byte-seconds exceed 2^64-1"};
  }
  state.memory_remainder = static_cast<uint64_t>(memory % kHalfByteNanosPerByteSecond);
  window.customer_id = customer_id;
  window.region = state.region;
  window.vm_id = vm_id;
  window.sampled_at_ns = to_ns;
  window.window_start_ns = from_ns;
  window.window_end_ns = to_ns;
  window.cpu_time_nanos = sums.cpu_time_nanos;
  window.memory_bytes_used = state.last.memory_usage_bytes;
  window.memory_bytes_peak = std::max(sums.memory_peak, state.last.memory_usage_bytes);
  window.memory_bytes_seconds = static_cast<uint64_t>(byte_seconds);
  window.disk_read_bytes = sums.disk_read_bytes;
  window.disk_write_bytes = sums.disk_write_bytes;
  window.network_rx_bytes = sums.network_rx_bytes;
  window.network_tx_bytes = sums.network_tx_bytes;
  return status::ok_status();
}

// A new session: counters restart from zero at `start_ns`.
void open_session(vm_state& state, int64_t start_ns) {
  state.session_start_ns = start_ns;
  state.session_end_ns = kNoTimestamp;
  state.session_end_by_timeout = false;
  state.watermark_ns = start_ns;
  state.last = metald_sample{start_ns, 0, 0, 0, 0, 0, 0};
  state.gauge_known = false;
  state.stop_pending = false;
  state.last_sample_ns = kNoTimestamp;
}

// Appends `next` (which starts where `into` ends) to `into`: one window over
// both, as if one batch had carried them; out_of_range past 2^64-1.
status append_window(std::optional<usage_window>& into, const std::optional<usage_window>& next) {
  if (!next) return status::ok_status();
  if (!into) {
    into = next;
    return status::ok_status();
  }
  if (into->window_end_ns != next->window_start_ns) {
    return {status_code::internal, "metald windows to append are not contiguous"};
  }
  const std::array<std::pair<uint64_t*, uint64_t>, 8> parts = {{
      {&into->cpu_time_nanos, next->cpu_time_nanos},
      {&into->memory_bytes_seconds, next->memory_bytes_seconds},
      {&into->disk_read_bytes, next->disk_read_bytes},
      {&into->disk_write_bytes, next->disk_write_bytes},
      {&into->disk_read_ops, next->disk_read_ops},
      {&into->disk_write_ops, next->disk_write_ops},
      {&into->network_rx_bytes, next->network_rx_bytes},
      {&into->network_tx_bytes, next->network_tx_bytes},
  }};
  std::array<uint64_t, 8> sums{};
  for (size_t i = 0; i < parts.size(); ++i) {
    if (__builtin_add_overflow(*parts[i].first, parts[i].second, &sums[i])) {
      return {status_code::out_of_range, "usage of one batch exceeds 2^64-1"};
    }
  }
  for (size_t i = 0; i < parts.size(); ++i) *parts[i].first = sums[i];
  into->window_end_ns = next->window_end_ns;
  into->sampled_at_ns = next->sampled_at_ns;
  into->memory_bytes_peak = std::max(into->memory_bytes_peak, next->memory_bytes_peak);
  into->memory_bytes_used = next->memory_bytes_used;
  return status::ok_status();
}

}  // namespace

result<metald_usage> apply_samples(vm_state& state, const std::string& customer_id,
                                   const std::string& vm_id, std::vector<metald_sample> samples,
                                   int64_t gap_after_ns) {
  std::stable_sort(samples.begin(), samples.end(),
                   [](const metald_sample& a, const metald_sample& b) {
                     return a.timestamp_ns < b.timestamp_ns;
                   });
  vm_state next = state;
  metald_usage usage;
  usage_sums sums;
  int64_t window_start_ns = next.watermark_ns;
  // The hole before the batch's first new sample (when it follows a real
  // sample), and the smallest interval between the batch's own samples.
  std::optional<int64_t> hole_before_ns;
  int64_t smallest_interval_ns = 0;
  for (const auto& sample : samples) {
    // At or before the watermark: applied already, or (arriving late) its
    // usage is inside the delta that jumped over it. The watermark advances
    // with every new sample, so a repeated timestamp is dropped too.
    if (next.watermark_ns != kNoTimestamp && sample.timestamp_ns <= next.watermark_ns) {
      // Never seen, but its session's closing window is written already: its
      // usage cannot be placed any more (it arrived after the stop's grace).
      if (!next.session_open() && !next.stop_pending &&
          sample.timestamp_ns <= next.session_end_ns &&
          (next.last_sample_ns == kNoTimestamp || sample.timestamp_ns > next.last_sample_ns)) {
        ++usage.after_closed_stop;
      }
      continue;
    }
    ++usage.new_samples;
    if (next.watermark_ns == kNoTimestamp) {
      // No start notification and no sample yet: the baseline. What its
      // counters hold from before is not charged.
      next.watermark_ns = sample.timestamp_ns;
      next.last_sample_ns = sample.timestamp_ns;
      next.last = sample;
      next.gauge_known = true;
      if (next.session_start_ns == kNoTimestamp) next.session_start_ns = sample.timestamp_ns;
      window_start_ns = sample.timestamp_ns;
      continue;
    }
    const int64_t interval_ns = sample.timestamp_ns - next.watermark_ns;
    if (usage.new_samples == 1) {
      if (next.gauge_known) hole_before_ns = interval_ns;
      // Before any cadence is known, a slow sampler's first interval is not a gap.
      const bool cadence_unknown = next.cadence_ns == 0 && next.gauge_known;
      if (gap_after_ns > 0 && !cadence_unknown &&
          interval_ns >= gap_threshold_ns(next, gap_after_ns)) {
        usage.gap = metald_gap{next.watermark_ns, sample.timestamp_ns};
      }
    } else if (smallest_interval_ns == 0 || interval_ns < smallest_interval_ns) {
      smallest_interval_ns = interval_ns;
    }
    if (!sums.add_deltas(next.last, sample)) {
      return status{status_code::out_of_range, "usage of one batch exceeds 2^64-1"};
    }
    // Right after a start the gauge is unknown: the first reading holds back to the start.
    const uint64_t gauge_before =
        next.gauge_known ? next.last.memory_usage_bytes : sample.memory_usage_bytes;
    sums.add_memory(gauge_before, sample.memory_usage_bytes, next.watermark_ns,
                    sample.timestamp_ns);
    sums.memory_peak = std::max(sums.memory_peak, sample.memory_usage_bytes);
    next.last = sample;
    next.watermark_ns = sample.timestamp_ns;
    next.last_sample_ns = sample.timestamp_ns;
    next.gauge_known = true;
  }
  if (usage.new_samples == 0 && usage.after_closed_stop > 0) {
    return status{
        status_code::failed_precondition,
        fmt::format("{} samples stamped at or before the end of the VM's session at {} "
                    "({}) arrived after its usage was closed (after the newest sample "
                    "billed, {}); they were not seen before and cannot be billed any more",
                    usage.after_closed_stop, format_rfc3339(next.session_end_ns),
                    next.session_end_by_timeout ? "its metald's heartbeats timed out"
                                                : "NotifyVmStopped, past its grace",
                    next.last_sample_ns == kNoTimestamp ? std::string{"none"}
                                                        : format_rfc3339(next.last_sample_ns))};
  }
  if (smallest_interval_ns > 0) {
    next.cadence_ns = smallest_interval_ns;
  } else if (hole_before_ns && !usage.gap) {
    next.cadence_ns = *hole_before_ns;
  }
  if (usage.new_samples > 0 && next.watermark_ns > window_start_ns) {
    usage_window window;
    if (status done = finish_window(next, sums, customer_id, vm_id, window_start_ns,
                                    next.watermark_ns, window);
        !done.ok()) {
      return done;
    }
    usage.window = std::move(window);
    // Samples after a stop or a heartbeat timeout: the VM runs, the session
    // reopens (a held stop's late samples leave it closed).
    if (!next.stop_pending) {
      next.session_end_ns = kNoTimestamp;
      next.session_end_by_timeout = false;
    }
  }
  state = std::move(next);
  return usage;
}

int64_t gap_threshold_ns(const vm_state& state, int64_t gap_after_ns) {
  return std::max(gap_after_ns, state.cadence_ns + state.cadence_ns / 2);
}

bool apply_start(vm_state& state, int64_t start_ns) {
  if (state.watermark_ns == kNoTimestamp ||
      (!state.session_open() && start_ns >= state.watermark_ns)) {
    open_session(state, start_ns);
    return true;
  }
  if (state.session_open() && state.session_start_ns == kNoTimestamp) {
    state.session_start_ns = start_ns;  // informational: the usage is counted from the samples
    return true;
  }
  return false;
}

namespace {

// Ends an open session at `end_ns`: the window from the watermark to the end
// carries no counter usage and the last gauge held.
result<metald_usage> end_session(vm_state& state, const std::string& customer_id,
                                 const std::string& vm_id, int64_t end_ns, bool by_timeout) {
  metald_usage usage;
  if (state.watermark_ns == kNoTimestamp || end_ns <= state.watermark_ns) {
    // Nothing to add (usage is counted up to the watermark already); just close.
    state.session_end_ns = end_ns;
    state.session_end_by_timeout = by_timeout;
    usage.new_samples = 1;
    return usage;
  }
  vm_state next = state;
  usage_sums sums;
  const uint64_t gauge = next.gauge_known ? next.last.memory_usage_bytes : 0;
  sums.add_memory(gauge, gauge, next.watermark_ns, end_ns);
  sums.memory_peak = gauge;
  usage_window window;
  if (status done =
          finish_window(next, sums, customer_id, vm_id, next.watermark_ns, end_ns, window);
      !done.ok()) {
    return done;
  }
  next.watermark_ns = end_ns;
  next.last.timestamp_ns = end_ns;
  next.session_end_ns = end_ns;
  next.session_end_by_timeout = by_timeout;
  usage.new_samples = 1;
  usage.window = std::move(window);
  state = std::move(next);
  return usage;
}

}  // namespace

result<metald_usage> apply_stop(vm_state& state, const std::string& customer_id,
                                const std::string& vm_id, int64_t stop_ns) {
  // The first stop wins (a held one included); a stop after a timeout is the exact end.
  if (!state.session_open() && !state.session_end_by_timeout) return metald_usage{};
  if (state.watermark_ns == kNoTimestamp || stop_ns <= state.watermark_ns) {
    return end_session(state, customer_id, vm_id, stop_ns, false);
  }
  // metald's final batch may still be on its way: hold the closing window.
  state.session_end_ns = stop_ns;
  state.session_end_by_timeout = false;
  state.stop_pending = true;
  metald_usage usage;
  usage.new_samples = 1;
  return usage;
}

result<metald_usage> finish_stop(vm_state& state, const std::string& customer_id,
                                 const std::string& vm_id) {
  if (!state.stop_pending) return metald_usage{};
  vm_state next = state;
  next.stop_pending = false;
  auto closed = end_session(next, customer_id, vm_id, next.session_end_ns, false);
  if (closed.ok()) state = std::move(next);
  return closed;
}

namespace {

// Samples of a VM whose stop is held: those up to the stop are billed in its
// session; later ones (the VM runs again) first close it, then reopen it.
result<metald_usage> apply_samples_around_stop(vm_state& state, const metald_op& op) {
  if (!state.stop_pending) {
    return apply_samples(state, op.customer_id, op.vm_id, op.samples, op.gap_after_ns);
  }
  std::vector<metald_sample> before;
  std::vector<metald_sample> after;
  for (const auto& sample : op.samples) {
    (sample.timestamp_ns <= state.session_end_ns ? before : after).push_back(sample);
  }
  vm_state next = state;
  metald_usage usage;
  if (!before.empty()) {
    auto late = apply_samples(next, op.customer_id, op.vm_id, std::move(before), op.gap_after_ns);
    if (!late.ok()) return late;
    usage = std::move(late).value();
  }
  if (!after.empty()) {
    auto closing = finish_stop(next, op.customer_id, op.vm_id);
    if (!closing.ok()) return closing;
    if (status appended = append_window(usage.window, closing->window); !appended.ok()) {
      return appended;
    }
    auto resumed = apply_samples(next, op.customer_id, op.vm_id, std::move(after), op.gap_after_ns);
    if (!resumed.ok()) return resumed;
    if (status appended = append_window(usage.window, resumed->window); !appended.ok()) {
      return appended;
    }
    usage.new_samples += resumed->new_samples;
    if (!usage.gap) usage.gap = resumed->gap;
  }
  state = std::move(next);
  return usage;
}

}  // namespace

result<metald_usage> apply_timeout(vm_state& state, const std::string& customer_id,
                                   const std::string& vm_id, int64_t end_ns) {
  if (!state.session_open() || state.watermark_ns == kNoTimestamp) return metald_usage{};
  return end_session(state, customer_id, vm_id, end_ns, true);
}

result<metald_usage> apply_op(vm_state& state, const metald_op& op) {
  if (state.region.empty()) state.region = op.region;
  switch (op.kind) {
    case metald_op_kind::samples:
      return apply_samples_around_stop(state, op);
    case metald_op_kind::start: {
      // A start after a held stop: the stopped session closes first.
      auto closing = finish_stop(state, op.customer_id, op.vm_id);
      if (!closing.ok()) return closing;
      const bool started = apply_start(state, op.at_ns);
      closing->new_samples = started || closing->new_samples > 0 ? 1u : 0u;
      return closing;
    }
    case metald_op_kind::finish_stop:
      return finish_stop(state, op.customer_id, op.vm_id);
    case metald_op_kind::stop:
      return apply_stop(state, op.customer_id, op.vm_id, op.at_ns);
    case metald_op_kind::timeout:
      return apply_timeout(state, op.customer_id, op.vm_id, op.at_ns);
    case metald_op_kind::gap: {
      metald_usage usage;
      usage.new_samples = 1;
      usage.gap = metald_gap{op.at_ns, op.until_ns};
      return usage;
    }
  }
  return status{status_code::invalid_argument, "unknown metald operation"};
}

std::vector<usage_window> split_at_hours(const usage_window& window) {
  std::vector<usage_window> pieces;
  for (const auto& share : split_into_hours(window)) {
    usage_window piece = window;
    piece.window_start_ns = std::max(share.hour_start_ns, window.window_start_ns);
    piece.window_end_ns = std::min(share.hour_start_ns + kNanosPerHour, window.window_end_ns);
    piece.cpu_time_nanos = share.totals.cpu_time_nanos;
    piece.memory_bytes_seconds = share.totals.memory_bytes_seconds;
    piece.disk_read_bytes = share.totals.disk_read_bytes;
    piece.disk_write_bytes = share.totals.disk_write_bytes;
    piece.disk_read_ops = share.totals.disk_read_ops;
    piece.disk_write_ops = share.totals.disk_write_ops;
    piece.network_rx_bytes = share.totals.network_rx_bytes;
    piece.network_tx_bytes = share.totals.network_tx_bytes;
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

}  // namespace billing::model
