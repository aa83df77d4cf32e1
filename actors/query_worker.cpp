#include "actors/query_worker.hpp"

#include <algorithm>

#include "actors/errors.hpp"
#include "model/calendar.hpp"
#include "model/invoice.hpp"
#include "model/rollup_window.hpp"
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

// Where a billing-window scan of the raw windows starts. Windows are keyed by
// their start: one that reaches into the range started at most the
// customer's longest window before it, and one cadence more finds the window
// just before a gap at the start of the range. The longest window comes from
// the monthly rollups around the query (a few keys per VM), bounded by what
// ingest accepts; without it every query would scan back the longest window
// ingest allows (an hour: for 1-minute windows, 60 times more than needed).
result<int64_t> window_scan_start(const storage::ledger_store& store,
                                  const model::window_query& query, const query_settings& settings,
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
  longest = std::min(longest, settings.max_window_ns);
  return query.start_ns - longest - settings.limits.expected_cadence_ns;
}

// Adds the gaps known without the raw windows: those metald recorded, and a
// metald VM whose session is open but which sent nothing for longer than its
// cadence allows (model::gap_threshold_ns), whose gap runs until now (or the
// range's end).
template <class Builder>
status add_metald_gaps(const storage::ledger_store& store, const model::window_query& query,
                       const query_settings& settings, Builder& builder) {
  status scanned = store.scan_metald_gaps(
      query.customer_id, query.start_ns, query.end_ns,
      [&](const std::string& vm_id, const std::string& region, const model::metald_gap& gap) {
        builder.add_gap({vm_id, region, gap.start_ns, gap.end_ns, 0, false});
        return true;
      });
  if (!scanned.ok()) return scanned;
  const int64_t now = model::unix_now_ns();
  return store.scan_vm_states(
      query.customer_id, [&](const std::string& vm_id, const model::vm_state& state) {
        if (state.session_open() && state.watermark_ns != model::kNoTimestamp &&
            now - state.watermark_ns >=
                model::gap_threshold_ns(state, settings.limits.expected_cadence_ns)) {
          builder.add_gap({vm_id, state.region, state.watermark_ns, now, 0, false});
        }
        return true;
      });
}

}  // namespace

result<model::billing_window> billing_window_from_raw(const storage::ledger_store& store,
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
    auto scan_from = window_scan_start(store, query, settings, view);
    if (!scan_from.ok()) return scan_from.error();
    return store.scan_windows(
        query.customer_id, scan_from.value(), query.end_ns,
        [&](model::usage_window& window) {
          if (priced) windows.push_back(window);
          builder.add(std::move(window));
          return true;
        },
        &view);
  });
  if (!scanned.ok()) return scanned;
  if (status added = add_metald_gaps(store, query, settings, builder); !added.ok()) return added;
  auto report = std::move(builder).finish();
  if (!report.ok()) return report;
  if (priced) {
    auto cost = model::usage_cost(versions.value(), windows, query.start_ns, query.end_ns);
    if (!cost.ok()) return cost.error();
    report.value().cost = model::format_money(cost.value());
  }
  return report;
}

std::optional<model::billing_window> billing_window_from_rollups(const storage::ledger_store& store,
                                                                 const model::window_query& query,
                                                                 const query_settings& settings) {
  if (!model::check_window_query(query, settings.limits).ok()) return std::nullopt;
  auto versions = storage::effective_plan(store, query.customer_id);
  if (!versions.ok()) return std::nullopt;
  model::rollup_window_builder builder(query, settings.limits, std::move(versions).value());
  // The windows and the rollups that stand in for them see the same commits.
  status scanned = store.with_snapshot([&](const storage::snapshot_view& view) {
    status hours = store.scan_rollups(
        query.customer_id, model::granularity::hour, builder.rollup_hours_from(),
        builder.rollup_hours_to(),
        [&](const model::rollup_id& id, const model::rollup_value& value) {
          builder.add_hour(id, value);
          return true;
        },
        &view);
    if (!hours.ok()) return hours;
    auto scan_from = window_scan_start(store, query, settings, view);
    if (!scan_from.ok()) return scan_from.error();
    status decoded = status::ok_status();
    status windows = store.scan_stored_windows(
        query.customer_id, scan_from.value(), query.end_ns,
        [&](const storage::stored_window& stored) {
          const auto& id = stored.identity;
          if (builder.needs_values(id.window_start_ns, id.window_end_ns)) {
            auto window = stored.decode();
            if (!window.ok()) decoded = window.error();
            if (window.ok()) builder.add_window(std::move(window).value());
            return window.ok();
          }
          auto gauge = stored.memory_bytes_used();
          if (!gauge.ok()) {
            decoded = gauge.error();
            return false;
          }
          builder.add_bounds(id.region, id.vm_id,
                             {id.window_start_ns, id.window_end_ns, gauge.value()});
          return true;
        },
        &view);
    return windows.ok() ? decoded : windows;
  });
  if (!scanned.ok()) return std::nullopt;
  if (!add_metald_gaps(store, query, settings, builder).ok()) return std::nullopt;
  return std::move(builder).finish();
}

result<model::billing_window> billing_window(const storage::ledger_store& store,
                                             const model::window_query& query,
                                             const query_settings& settings) {
  if (status bad = model::check_window_query(query, settings.limits); !bad.ok()) return bad;
  // Any doubt (rollups that do not match the windows, an overflow, an error)
  // and the raw windows answer, with their own result or error.
  if (auto answer = billing_window_from_rollups(store, query, settings)) {
    return std::move(*answer);
  }
  return billing_window_from_raw(store, query, settings);
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
