#include "model/metald.hpp"

#include <doctest/doctest.h>

#include "model/calendar.hpp"

using namespace billing;
using namespace billing::model;

namespace {

constexpr int64_t kT0 = int64_t{1'764'000'000} * kNanosPerSecond;  // 2025-11-24T16:00:00Z
constexpr int64_t kMs = 1'000'000;

metald_sample sample(int64_t at_ns, uint64_t cpu, uint64_t memory, uint64_t tx = 0) {
  return {at_ns, cpu, memory, 0, 0, 0, tx};
}

vm_state fresh_state() {
  vm_state state;
  state.region = "default";
  return state;
}

metald_usage apply(vm_state& state, std::vector<metald_sample> samples) {
  auto applied = apply_samples(state, "acme", "vm-1", std::move(samples));
  REQUIRE(applied.ok());
  return applied.value();
}

}  // namespace

TEST_CASE("the first sample is a baseline; later ones add exact deltas and the memory integral") {
  auto state = fresh_state();
  const auto usage = apply(state, {sample(kT0 + 200 * kMs, 10'000, 3000),  // any order
                                   sample(kT0, 5'000, 1000), sample(kT0 + 100 * kMs, 7'000, 3000)});
  CHECK(usage.new_samples == 3);
  REQUIRE(usage.window);
  const auto& w = *usage.window;
  CHECK(w.customer_id == "acme");
  CHECK(w.region == "default");
  CHECK(w.vm_id == "vm-1");
  CHECK(w.window_start_ns == kT0);
  CHECK(w.window_end_ns == kT0 + 200 * kMs);
  CHECK(w.cpu_time_nanos == 5'000);
  // (1000+3000)/2 B * 0.1 s + 3000 B * 0.1 s = 200 + 300
  CHECK(w.memory_bytes_seconds == 500);
  CHECK(w.memory_bytes_peak == 3000);
  CHECK(w.memory_bytes_used == 3000);
  CHECK(state.watermark_ns == kT0 + 200 * kMs);
  CHECK(state.memory_remainder == 0);
  CHECK(state.session_start_ns == kT0);
}

TEST_CASE("a counter that goes backwards was reset and counts from zero") {
  auto state = fresh_state();
  const auto usage =
      apply(state, {sample(kT0, 10, 0, 1000), sample(kT0 + kMs, 50, 0, 1500),
                    sample(kT0 + 2 * kMs, 20, 0, 100), sample(kT0 + 3 * kMs, 30, 0, 400)});
  REQUIRE(usage.window);
  CHECK(usage.window->cpu_time_nanos == 40 + 20 + 10);
  CHECK(usage.window->network_tx_bytes == 500 + 100 + 300);
}

TEST_CASE("a re-sent batch adds nothing and an overlapping one only its new samples") {
  std::vector<metald_sample> all;
  for (int i = 0; i < 8; ++i) all.push_back(sample(kT0 + i * 100 * kMs, 1000 * i * i, 4096));

  auto whole = fresh_state();
  const auto at_once = apply(whole, all);

  auto state = fresh_state();
  const auto first = apply(state, {all.begin(), all.begin() + 5});
  const vm_state after_first = state;
  const auto retried = apply(state, {all.begin(), all.begin() + 5});
  CHECK(retried.new_samples == 0);
  CHECK_FALSE(retried.window);
  CHECK(state == after_first);

  const auto overlapping = apply(state, {all.begin() + 3, all.end()});
  CHECK(overlapping.new_samples == 3);
  REQUIRE(first.window);
  REQUIRE(overlapping.window);
  CHECK(overlapping.window->window_start_ns == first.window->window_end_ns);
  CHECK(first.window->cpu_time_nanos + overlapping.window->cpu_time_nanos ==
        at_once.window->cpu_time_nanos);
  CHECK(at_once.window->cpu_time_nanos == 49'000);
  CHECK(first.window->memory_bytes_seconds + overlapping.window->memory_bytes_seconds ==
        at_once.window->memory_bytes_seconds);
  CHECK(state == whole);
}

TEST_CASE("a late batch of older samples adds nothing: the later delta already holds it") {
  auto state = fresh_state();
  apply(state, {sample(kT0, 0, 100)});
  const auto later = apply(state, {sample(kT0 + 300 * kMs, 900, 100)});
  const auto late =
      apply(state, {sample(kT0 + 100 * kMs, 300, 100), sample(kT0 + 200 * kMs, 600, 100)});
  CHECK(late.new_samples == 0);
  CHECK_FALSE(late.window);
  REQUIRE(later.window);
  CHECK(later.window->cpu_time_nanos == 900);  // last minus first: nothing lost, nothing twice
}

TEST_CASE("samples with one timestamp count once") {
  auto state = fresh_state();
  const auto usage =
      apply(state, {sample(kT0, 0, 0), sample(kT0 + kMs, 10, 0), sample(kT0 + kMs, 99, 0)});
  CHECK(usage.new_samples == 2);
  CHECK(usage.window->cpu_time_nanos == 10);
}

TEST_CASE("the memory integral is the floor of the exact total, however it is batched") {
  auto state = fresh_state();
  apply(state, {sample(kT0, 0, 1)});
  uint64_t byte_seconds = 0;
  for (int i = 1; i <= 4; ++i) {
    const auto usage = apply(state, {sample(kT0 + i * 300 * kMs, 0, 1)});
    byte_seconds += usage.window->memory_bytes_seconds;
  }
  CHECK(byte_seconds == 1);                      // 1 B for 1.2 s
  CHECK(state.memory_remainder == 400'000'000);  // 0.2 B·s in half byte-nanoseconds

  auto big = fresh_state();
  const uint64_t tib = uint64_t{1} << 40;
  apply(big, {sample(kT0, 0, tib)});
  const auto hour = apply(big, {sample(kT0 + kNanosPerHour, 0, 3 * tib)});
  CHECK(hour.window->memory_bytes_seconds == 2 * tib * 3600);
}

TEST_CASE("start and stop notifications give the session's exact VM time") {
  auto state = fresh_state();
  CHECK(apply_start(state, kT0));
  CHECK_FALSE(apply_start(state, kT0));  // a duplicate is harmless
  const auto first = apply(state, {sample(kT0, 7, 10), sample(kT0 + kNanosPerSecond, 100, 10)});
  CHECK(first.new_samples == 1);  // the sample at the start instant is the start itself
  REQUIRE(first.window);
  CHECK(first.window->window_start_ns == kT0);
  CHECK(first.window->cpu_time_nanos == 100);       // counted from zero at the start
  CHECK(first.window->memory_bytes_seconds == 10);  // the first reading held back to the start

  auto held = apply_stop(state, "acme", "vm-1", kT0 + 3 * kNanosPerSecond);
  REQUIRE(held.ok());
  CHECK_FALSE(held->window);  // held for the final batch
  CHECK(state.stop_pending);
  CHECK_FALSE(state.session_open());
  auto stopped = finish_stop(state, "acme", "vm-1");
  REQUIRE(stopped.ok());
  CHECK_FALSE(state.stop_pending);
  REQUIRE(stopped->window);
  CHECK(stopped->window->window_start_ns == kT0 + kNanosPerSecond);
  CHECK(stopped->window->window_end_ns == kT0 + 3 * kNanosPerSecond);
  CHECK(stopped->window->cpu_time_nanos == 0);
  CHECK(stopped->window->memory_bytes_seconds == 20);
  CHECK_FALSE(state.session_open());

  auto again = apply_stop(state, "acme", "vm-1", kT0 + 5 * kNanosPerSecond);
  REQUIRE(again.ok());
  CHECK_FALSE(again->window);
  CHECK(state.session_end_ns == kT0 + 3 * kNanosPerSecond);

  // A restart: counters begin again from zero even when they exceed the old ones.
  CHECK(apply_start(state, kT0 + 10 * kNanosPerSecond));
  const auto resumed = apply(state, {sample(kT0 + 11 * kNanosPerSecond, 500, 10)});
  CHECK(resumed.window->cpu_time_nanos == 500);
  CHECK(state.session_open());
}

TEST_CASE("a session ended by a heartbeat timeout reopens when samples resume") {
  auto state = fresh_state();
  apply(state, {sample(kT0, 0, 0), sample(kT0 + kNanosPerSecond, 10, 0)});
  state.session_end_ns = kT0 + 2 * kNanosPerSecond;
  state.session_end_by_timeout = true;
  const auto resumed = apply(state, {sample(kT0 + 200 * kNanosPerSecond, 30, 0)});
  CHECK(resumed.window->cpu_time_nanos == 20);
  CHECK(state.session_open());
}

TEST_CASE("long windows are cut at UTC hours with their usage apportioned") {
  usage_window w;
  w.window_start_ns = kT0 + kNanosPerHour / 2;
  w.window_end_ns = kT0 + 2 * kNanosPerHour + kNanosPerHour / 4;
  w.cpu_time_nanos = 105;
  const auto pieces = split_at_hours(w);
  REQUIRE(pieces.size() == 3);
  CHECK(pieces[0].window_start_ns == w.window_start_ns);
  CHECK(pieces[0].window_end_ns == kT0 + kNanosPerHour);
  CHECK(pieces[0].cpu_time_nanos == 30);
  CHECK(pieces[1].cpu_time_nanos == 60);
  CHECK(pieces[2].cpu_time_nanos == 15);
  CHECK(pieces[2].window_end_ns == w.window_end_ns);
}

TEST_CASE("a hole in the samples at least the gap threshold long is reported as a gap") {
  auto state = fresh_state();
  apply(state, {sample(kT0, 0, 0), sample(kT0 + kNanosPerSecond, 10, 0)});
  auto small = apply_samples(state, "acme", "vm-1", {sample(kT0 + 30 * kNanosPerSecond, 20, 0)},
                             60 * kNanosPerSecond);
  REQUIRE(small.ok());
  CHECK_FALSE(small->gap);
  auto hole = apply_samples(
      state, "acme", "vm-1",
      {sample(kT0 + 200 * kNanosPerSecond, 90, 0), sample(kT0 + 500 * kNanosPerSecond, 95, 0)},
      60 * kNanosPerSecond);
  REQUIRE(hole.ok());
  REQUIRE(hole->gap);
  CHECK(*hole->gap == metald_gap{kT0 + 30 * kNanosPerSecond, kT0 + 200 * kNanosPerSecond});
  CHECK(hole->window->cpu_time_nanos == 75);  // the counters still carry everything
}

TEST_CASE("the gap threshold follows each VM's learned cadence: 100 ms or 5 minutes") {
  constexpr int64_t kMinute = 60 * kNanosPerSecond;
  constexpr int64_t kExpected = kMinute;  // --expected-cadence-seconds=60
  SUBCASE("every 5 minutes, one sample per batch: regular intervals are no gap, a missed one is") {
    auto state = fresh_state();
    for (int i = 0; i < 4; ++i) {
      auto usage = apply_samples(state, "acme", "vm-1", {sample(kT0 + i * 5 * kMinute, 10 * i, 0)},
                                 kExpected);
      REQUIRE(usage.ok());
      CHECK_FALSE(usage->gap);
    }
    CHECK(state.cadence_ns == 5 * kMinute);
    CHECK(gap_threshold_ns(state, kExpected) == 7 * kMinute + 30 * kNanosPerSecond);
    // The batch of minute 20 is missing: 15 → 25 is a gap.
    auto missed =
        apply_samples(state, "acme", "vm-1", {sample(kT0 + 25 * kMinute, 50, 0)}, kExpected);
    REQUIRE(missed.ok());
    REQUIRE(missed->gap);
    CHECK(*missed->gap == metald_gap{kT0 + 15 * kMinute, kT0 + 25 * kMinute});
    CHECK(state.cadence_ns == 5 * kMinute);  // a gap teaches nothing
    auto next =
        apply_samples(state, "acme", "vm-1", {sample(kT0 + 30 * kMinute, 60, 0)}, kExpected);
    REQUIRE(next.ok());
    CHECK_FALSE(next->gap);
  }
  SUBCASE("every 100 ms, 600 per batch: the --expected-cadence-seconds floor still applies") {
    auto state = fresh_state();
    std::vector<metald_sample> batch;
    for (int i = 0; i < 600; ++i) batch.push_back(sample(kT0 + i * 100 * kMs, i, 0));
    REQUIRE(apply_samples(state, "acme", "vm-1", batch, kExpected).ok());
    CHECK(state.cadence_ns == 100 * kMs);
    CHECK(gap_threshold_ns(state, kExpected) == kExpected);
    auto hole =
        apply_samples(state, "acme", "vm-1", {sample(kT0 + 2 * kMinute, 700, 0)}, kExpected);
    REQUIRE(hole.ok());
    REQUIRE(hole->gap);
    CHECK(*hole->gap == metald_gap{kT0 + 59'900 * kMs, kT0 + 2 * kMinute});
  }
}

namespace {

metald_op samples_op(std::vector<metald_sample> samples) {
  metald_op op;
  op.kind = metald_op_kind::samples;
  op.customer_id = "acme";
  op.region = "default";
  op.vm_id = "vm-1";
  op.samples = std::move(samples);
  return op;
}

metald_op lifecycle(metald_op_kind kind, int64_t at_ns = 0) {
  metald_op op;
  op.kind = kind;
  op.customer_id = "acme";
  op.region = "default";
  op.vm_id = "vm-1";
  op.at_ns = at_ns;
  return op;
}

// The sum of the windows' values over a sequence of ops' results.
struct billed {
  uint64_t cpu = 0;
  int64_t active_ns = 0;
  void add(const result<metald_usage>& usage) {
    REQUIRE_MESSAGE(usage.ok(), usage.error().message());
    if (!usage->window) return;
    cpu += usage->window->cpu_time_nanos;
    active_ns += usage->window->duration_ns();
  }
};

}  // namespace

TEST_CASE("a final batch arriving after NotifyVmStopped is billed exactly once") {
  constexpr int64_t kS = kNanosPerSecond;
  auto state = fresh_state();
  billed total;
  total.add(apply_op(state, lifecycle(metald_op_kind::start, kT0)));
  std::vector<metald_sample> first;
  for (int i = 1; i <= 600; ++i) first.push_back(sample(kT0 + i * 100 * kMs, 10 * i, 0));
  total.add(apply_op(state, samples_op(first)));
  // The stop at S+70.05 s comes before the last batch (S+60.1 ... S+70 s).
  const int64_t stop = kT0 + 70 * kS + 50 * kMs;
  total.add(apply_op(state, lifecycle(metald_op_kind::stop, stop)));
  std::vector<metald_sample> last;
  for (int i = 601; i <= 700; ++i) last.push_back(sample(kT0 + i * 100 * kMs, 10 * i, 0));
  auto late = apply_op(state, samples_op(last));
  REQUIRE(late.ok());
  CHECK(late->new_samples == 100);  // not "already seen"
  total.add(late);
  CHECK_FALSE(state.session_open());  // still stopped
  // A retry of the late batch adds nothing.
  auto retried = apply_op(state, samples_op(last));
  REQUIRE(retried.ok());
  CHECK(retried->new_samples == 0);
  total.add(retried);
  total.add(apply_op(state, lifecycle(metald_op_kind::finish_stop)));
  CHECK(total.cpu == 7000);              // every counter delta, once
  CHECK(total.active_ns == stop - kT0);  // exactly start to stop
  // Finishing twice changes nothing.
  auto again = apply_op(state, lifecycle(metald_op_kind::finish_stop));
  REQUIRE(again.ok());
  CHECK(again->new_samples == 0);
  // Never seen, stamped before the stop, but after its usage was closed: said so, not "already
  // seen".
  auto too_late = apply_op(state, samples_op({sample(stop - 20 * kMs, 7001, 0)}));
  REQUIRE_FALSE(too_late.ok());
  CHECK(too_late.error().code() == status_code::failed_precondition);
  CHECK(too_late.error().message().find(format_rfc3339(stop)) != std::string::npos);
  // Samples truly seen before are still just duplicates.
  auto seen = apply_op(state, samples_op({sample(kT0 + 700 * 100 * kMs, 7000, 0)}));
  REQUIRE(seen.ok());
  CHECK(seen->new_samples == 0);
}

TEST_CASE("samples after a held stop close it first, then reopen the session") {
  constexpr int64_t kS = kNanosPerSecond;
  auto state = fresh_state();
  billed total;
  total.add(apply_op(state, lifecycle(metald_op_kind::start, kT0)));
  total.add(apply_op(state, samples_op({sample(kT0 + kS, 10, 0)})));
  total.add(apply_op(state, lifecycle(metald_op_kind::stop, kT0 + 5 * kS)));
  // One batch across the stop: 3 s (before it) and 8 s (the VM runs again).
  auto across =
      apply_op(state, samples_op({sample(kT0 + 3 * kS, 30, 0), sample(kT0 + 8 * kS, 80, 0)}));
  REQUIRE(across.ok());
  CHECK(across->new_samples == 2);
  REQUIRE(across->window);
  CHECK(across->window->window_start_ns == kT0 + kS);
  CHECK(across->window->window_end_ns == kT0 + 8 * kS);
  total.add(across);
  CHECK(state.session_open());
  CHECK_FALSE(state.stop_pending);
  CHECK(total.cpu == 80);
  CHECK(total.active_ns == 8 * kS);
  // A start after a held stop closes the stopped session with its window.
  auto second = fresh_state();
  REQUIRE(apply_op(second, lifecycle(metald_op_kind::start, kT0)).ok());
  REQUIRE(apply_op(second, samples_op({sample(kT0 + kS, 10, 0)})).ok());
  REQUIRE(apply_op(second, lifecycle(metald_op_kind::stop, kT0 + 5 * kS)).ok());
  auto restarted = apply_op(second, lifecycle(metald_op_kind::start, kT0 + 9 * kS));
  REQUIRE(restarted.ok());
  REQUIRE(restarted->window);
  CHECK(restarted->window->window_end_ns == kT0 + 5 * kS);
  CHECK(second.session_open());
  CHECK(second.session_start_ns == kT0 + 9 * kS);
}
