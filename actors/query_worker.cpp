#include "actors/query_worker.hpp"

#include <algorithm>

#include "actors/errors.hpp"
#include "model/calendar.hpp"
#include "model/invoice.hpp"
#include "storage/billing_records.hpp"

namespace billing::actors {

result<model::customer_usage> customer_usage(const storage::ledger_store& store,
                                             const model::usage_query& query,
                                             const query_settings& settings) {
  if (status bad = model::check_usage_query(query, settings.limits); !bad.ok()) return bad;
  model::customer_usage_builder builder(query);
  status added = status::ok_status();
  status scanned =
      store.scan_rollups(query.customer_id, query.grain, query.start_ns, query.end_ns,
                         [&](const model::rollup_id& id, const model::rollup_value& v) {
                           added = builder.add(id, v);
                           return added.ok();
                         });
  if (!scanned.ok()) return scanned;
  if (!added.ok()) return added;
  return std::move(builder).finish();
}

namespace {

// The longest window of the customer in the months around the query, from
// the monthly rollups (a few keys per VM), bounded by what ingest accepts:
// how far before the range a window reaching into it can start. Without it
// every query would scan back the longest window ingest allows (an hour:
// for 1-minute windows, 60 times more than needed).
result<int64_t> longest_window_near(const storage::ledger_store& store,
                                    const model::window_query& query,
                                    const query_settings& settings,
                                    const storage::snapshot_view& view) {
  const int64_t from =
      model::bucket_start(model::granularity::month, query.start_ns - settings.max_window_ns);
  int64_t longest = 0;
  status scanned = store.scan_rollups(
      query.customer_id, model::granularity::month, from, query.end_ns,
      [&](const model::rollup_id&, const model::rollup_value& value) {
        longest = std::max(longest, value.longest_window_ns);
        return longest < settings.max_window_ns;
      },
      &view);
  if (!scanned.ok()) return scanned;
  return std::min(longest, settings.max_window_ns);
}

}  // namespace

result<model::billing_window> billing_window(const storage::ledger_store& store,
                                             const model::window_query& query,
                                             const query_settings& settings) {
  if (status bad = model::check_window_query(query, settings.limits); !bad.ok()) return bad;
  model::billing_window_builder builder(query, settings.limits);
  // The window's cost needs its raw windows only when the customer has a plan.
  auto versions = storage::effective_plan(store, query.customer_id);
  if (!versions.ok()) return versions.error();
  const bool priced = !versions.value().empty();
  std::vector<model::usage_window> windows;
  // Both reads see the same commits.
  status scanned = store.with_snapshot([&](const storage::snapshot_view& view) {
    auto longest = longest_window_near(store, query, settings, view);
    if (!longest.ok()) return longest.error();
    // Windows are keyed by their start: one that reaches into the range
    // started at most `longest` before it. One cadence more finds the window
    // just before a gap at the start of the range.
    const int64_t scan_from = query.start_ns - *longest - settings.limits.expected_cadence_ns;
    return store.scan_windows(
        query.customer_id, scan_from, query.end_ns,
        [&](model::usage_window& window) {
          if (priced) windows.push_back(window);
          builder.add(std::move(window));
          return true;
        },
        &view);
  });
  if (!scanned.ok()) return scanned;
  scanned = store.scan_metald_gaps(
      query.customer_id, query.start_ns, query.end_ns,
      [&](const std::string& vm_id, const std::string& region, const model::metald_gap& gap) {
        builder.add_gap({vm_id, region, gap.start_ns, gap.end_ns, 0, false});
        return true;
      });
  if (!scanned.ok()) return scanned;
  // A metald VM whose session is open but which sent nothing for a cadence
  // or more: its gap runs until now (or the range's end).
  const int64_t now = model::unix_now_ns();
  scanned = store.scan_vm_states(
      query.customer_id, [&](const std::string& vm_id, const model::vm_state& state) {
        if (state.session_open() && state.watermark_ns != model::kNoTimestamp &&
            now - state.watermark_ns >= settings.limits.expected_cadence_ns) {
          builder.add_gap({vm_id, state.region, state.watermark_ns, now, 0, false});
        }
        return true;
      });
  if (!scanned.ok()) return scanned;
  auto report = std::move(builder).finish();
  if (!report.ok()) return report;
  if (priced) {
    auto cost = model::usage_cost(versions.value(), windows, query.start_ns, query.end_ns);
    if (!cost.ok()) return cost.error();
    report.value().cost = model::format_money(cost.value());
  }
  return report;
}

namespace {

template <class T>
caf::result<T> to_result(result<T> answer) {
  if (!answer.ok()) return to_error(answer.error());
  return std::move(answer).value();
}

}  // namespace

query_actor spawn_query_worker(caf::actor_system& system, query_settings settings,
                               std::shared_ptr<storage::ledger_store> store) {
  return system.spawn([settings, store](query_actor::pointer) -> query_actor::behavior_type {
    return {
        [settings, store](usage_atom,
                          const model::usage_query& query) -> caf::result<model::customer_usage> {
          return to_result(customer_usage(*store, query, settings));
        },
        [settings, store](window_atom,
                          const model::window_query& query) -> caf::result<model::billing_window> {
          return to_result(billing_window(*store, query, settings));
        },
    };
  });
}

}  // namespace billing::actors
