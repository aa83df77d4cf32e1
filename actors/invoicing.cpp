#include "actors/invoicing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "model/calendar.hpp"
#include "storage/billing_records.hpp"

namespace billing::actors {
namespace {

// What the audit trail says about a plan version.
std::string describe(const model::plan_version& version) {
  std::string text = fmt::format("effective_from_ns={}", version.effective_from_ns);
  for (size_t d = 0; d < model::dimension_count; ++d) {
    const auto& tiers = version.prices[d].tiers;
    if (tiers.empty()) continue;
    text += fmt::format(" {}=", model::info(static_cast<model::dimension>(d)).name);
    for (size_t t = 0; t < tiers.size(); ++t) {
      if (t > 0) text += ',';
      text += model::format_rate(tiers[t].price);
      if (tiers[t].up_to_base_units != 0) {
        text += fmt::format("<{}", model::format_decimal(tiers[t].up_to_base_units, 0));
      }
    }
  }
  for (const auto& [region, multiplier] : version.region_multipliers) {
    text += fmt::format(" x{}={}", region, model::format_decimal(multiplier, 6));
  }
  text += fmt::format(" base_fee={} minimum={}", model::format_money(version.monthly_base_fee),
                      model::format_money(version.monthly_minimum));
  return text;
}

std::string describe(const model::invoice& bill) {
  return fmt::format("period_start_ns={} number={} total={} hash={}", bill.period_start_ns,
                     bill.number, model::format_money(bill.total), bill.content_hash);
}

}  // namespace

status feed_invoice_builder(const storage::ledger_store& store, const std::string& customer_id,
                            int64_t start_ns, int64_t end_ns, int64_t max_window_ns,
                            model::invoice_builder& builder) {
  status scanned =
      store.scan_rollups(customer_id, model::granularity::hour, start_ns, end_ns,
                         [&](const model::rollup_id& id, const model::rollup_value& value) {
                           builder.add_hour(id, value);
                           return true;
                         });
  if (!scanned.ok()) return scanned;
  for (int64_t hour : builder.split_hours()) {
    scanned = store.scan_windows(customer_id, hour - max_window_ns, hour + model::kNanosPerHour,
                                 [&](const model::usage_window& window) {
                                   builder.add_window(window);
                                   return true;
                                 });
    if (!scanned.ok()) return scanned;
  }
  return status::ok_status();
}

invoicing::invoicing(std::shared_ptr<storage::ledger_store> store, invoicing_settings settings)
    : store_(std::move(store)), settings_(std::move(settings)) {
  if (!settings_.clock) settings_.clock = model::unix_now_ns;
}

status invoicing::commit(const std::string& customer_id, storage::write_set writes) {
  if (settings_.terms && !customer_id.empty()) {
    // Replicated: written as the customer's shard leader, acknowledged by a
    // majority of its replicas (the default plan is set on every node).
    auto served = settings_.terms->serving(customer_id);
    if (!served.ok()) return served.error();
    writes.replicate_as_leader(served.value().shard, served.value().epoch);
  }
  status done = store_->commit_and_wait(std::move(writes));
  if (done.code() == status_code::deadline_exceeded) {
    return {status_code::unavailable, done.message()};
  }
  return done;
}

result<std::vector<model::plan_version>> invoicing::plan(const std::string& customer_id) const {
  if (customer_id.empty()) return storage::load_plan_versions(*store_, "");
  return storage::effective_plan(*store_, customer_id);
}

result<std::vector<model::plan_version>> invoicing::set_plan(const std::string& customer_id,
                                                             const model::plan_version& version,
                                                             const std::string& who) {
  if (status bad = model::validate(version); !bad.ok()) return bad;
  std::lock_guard lock(writes_);
  // Setting a version again as it is stored changes nothing and records
  // nothing (a retried call, a restart with the same --plans-file).
  auto stored = storage::load_plan_versions(*store_, customer_id);
  if (!stored.ok()) return stored.error();
  const std::string encoded = storage::encode_plan_version(version);
  for (const auto& existing : stored.value()) {
    if (storage::encode_plan_version(existing) == encoded) return plan(customer_id);
  }
  // Finalized periods are never re-priced: a late window in one is adjusted
  // at the prices it was invoiced at.
  int64_t finalized_through = INT64_MIN;
  if (customer_id.empty()) {
    auto counters = storage::load_invoice_counters(*store_);
    if (!counters.ok()) return counters.error();
    finalized_through = counters.value().finalized_through_ns;
  } else {
    auto finalized = storage::list_invoices(*store_, customer_id);
    if (!finalized.ok()) return finalized.error();
    if (!finalized.value().empty()) finalized_through = finalized.value().back().period_end_ns;
  }
  if (version.effective_from_ns < finalized_through) {
    return status{status_code::failed_precondition,
                  fmt::format("a plan version cannot take effect before {}: that period is "
                              "already finalized",
                              model::format_rfc3339(finalized_through))};
  }
  storage::write_set writes;
  writes.put_plan_version(customer_id, version);
  writes.put_audit(customer_id, "plan.set", who, describe(version));
  if (status written = commit(customer_id, std::move(writes)); !written.ok()) return written;
  return plan(customer_id);
}

result<model::invoice> invoicing::charges(const std::string& customer_id, int64_t start_ns,
                                          int64_t end_ns) const {
  auto versions = storage::effective_plan(*store_, customer_id);
  if (!versions.ok()) return versions.error();
  model::invoice_builder builder(customer_id, start_ns, end_ns, std::move(versions).value());
  status fed = feed_invoice_builder(*store_, customer_id, start_ns, end_ns, settings_.max_window_ns,
                                    builder);
  if (!fed.ok()) return fed;
  return std::move(builder).finish();
}

result<model::invoice> invoicing::draft(const std::string& customer_id, int64_t start_ns,
                                        int64_t end_ns) const {
  auto bill = charges(customer_id, start_ns, end_ns);
  if (!bill.ok()) return bill;
  auto finalized = storage::list_invoices(*store_, customer_id);
  if (!finalized.ok()) return finalized.error();
  const auto& earlier = finalized.value();
  for (size_t q = 0; q < earlier.size() && earlier[q].period_start_ns < start_ns; ++q) {
    const auto& invoiced = earlier[q];
    auto now = charges(customer_id, invoiced.period_start_ns, invoiced.period_end_ns);
    if (!now.ok()) return now.error();
    model::money delta{now.value().subtotal.nanos - invoiced.subtotal.nanos};
    for (size_t r = q + 1; r < earlier.size() && earlier[r].period_start_ns < start_ns; ++r) {
      delta.nanos -= model::adjustments_for(earlier[r], invoiced.period_start_ns).nanos;
    }
    if (delta.nanos != 0) model::add_adjustment(bill.value(), invoiced.period_start_ns, delta);
  }
  return bill;
}

result<model::invoice> invoicing::get_invoice(const std::string& customer_id,
                                              int64_t period_start_ns, const std::string& who) {
  auto period = model::monthly_period(period_start_ns);
  if (!period.ok()) return period.error();
  auto stored = storage::load_invoice(*store_, customer_id, period_start_ns);
  if (!stored.ok()) return stored.error();
  if (stored.value()) return std::move(*stored.value());
  auto bill = draft(customer_id, period.value().first, period.value().second);
  if (!bill.ok()) return bill;
  storage::write_set writes;
  writes.put_audit(customer_id, "invoice.draft", who,
                   fmt::format("period_start_ns={} total={}", period_start_ns,
                               model::format_money(bill.value().total)));
  if (status written = commit(customer_id, std::move(writes)); !written.ok()) return written;
  return bill;
}

result<std::vector<model::invoice>> invoicing::list_invoices(const std::string& customer_id) const {
  return storage::list_invoices(*store_, customer_id);
}

result<std::vector<model::invoice>> invoicing::finalize(int64_t period_start_ns,
                                                        std::vector<std::string> customer_ids,
                                                        const std::string& who) {
  auto period = model::monthly_period(period_start_ns);
  if (!period.ok()) return period.error();
  const auto [start_ns, end_ns] = period.value();
  const int64_t now = settings_.clock();
  if (end_ns > now) {
    return status{status_code::failed_precondition,
                  "a period can be finalized only after it has ended"};
  }
  std::lock_guard lock(writes_);
  if (customer_ids.empty()) {
    auto used = storage::customers_with_usage(*store_, start_ns, end_ns);
    if (!used.ok()) return used.error();
    customer_ids = std::move(used).value();
    // Replicated: followers hold these customers too; their leaders finalize.
    if (settings_.terms) {
      std::erase_if(customer_ids, [&](const std::string& customer_id) {
        return !settings_.terms->serving(customer_id).ok();
      });
    }
  }
  std::sort(customer_ids.begin(), customer_ids.end());
  customer_ids.erase(std::unique(customer_ids.begin(), customer_ids.end()), customer_ids.end());

  auto counters = storage::load_invoice_counters(*store_);
  if (!counters.ok()) return counters.error();
  uint64_t next_number = counters.value().next_number;
  std::vector<model::invoice> answer;
  std::vector<size_t> fresh;  // indices in `answer` of the invoices finalized now
  for (const auto& customer_id : customer_ids) {
    auto finalized = storage::list_invoices(*store_, customer_id);
    if (!finalized.ok()) return finalized.error();
    auto same = std::find_if(
        finalized.value().begin(), finalized.value().end(),
        [start = start_ns](const model::invoice& bill) { return bill.period_start_ns == start; });
    if (same != finalized.value().end()) {
      answer.push_back(std::move(*same));  // finalized once, never again
      continue;
    }
    if (!finalized.value().empty() && finalized.value().back().period_start_ns > start_ns) {
      return status{status_code::failed_precondition,
                    fmt::format("customer '{}' already has a finalized invoice for a later period",
                                customer_id)};
    }
    auto bill = draft(customer_id, start_ns, end_ns);
    if (!bill.ok()) return bill.error();
    fresh.push_back(answer.size());
    answer.push_back(std::move(bill).value());
  }
  if (fresh.empty()) return answer;
  if (settings_.take_numbers) {
    // Taken only now that every draft is computed: a failed draft wastes none.
    auto taken = settings_.take_numbers(fresh.size());
    if (!taken.ok()) return taken.error();
    next_number = taken.value();
  }
  // One write with every invoice; replicated, one per customer (each is its
  // shard's log entry), then the counters: a failure part-way leaves the
  // invoices written so far finalized, and a retry finalizes the rest.
  storage::write_set writes;
  for (const size_t index : fresh) {
    auto& bill = answer[index];
    bill.finalized = true;
    bill.number = next_number++;
    bill.finalized_at_ns = now;
    storage::seal_invoice(bill);
    writes.put_invoice(bill);
    writes.put_audit(bill.customer_id, "invoice.finalize", who, describe(bill));
    for (const auto& line : bill.lines) {
      if (line.kind != model::line_kind::adjustment) continue;
      writes.put_audit(
          bill.customer_id, "invoice.adjustment", who,
          fmt::format("invoice {} adjusts period_start_ns={} by {}", bill.number,
                      line.adjusted_period_start_ns, model::format_money(line.amount)));
    }
    if (settings_.terms) {
      if (status written = commit(bill.customer_id, std::exchange(writes, {})); !written.ok()) {
        return written;
      }
    }
  }
  writes.put_invoice_counters(std::max(next_number, counters.value().next_number),
                              std::max(counters.value().finalized_through_ns, end_ns));
  if (status written = commit("", std::move(writes)); !written.ok()) return written;
  return answer;
}

}  // namespace billing::actors
