#include "ctl/render.hpp"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <string>
#include <vector>

#include "ctl/table.hpp"
#include "model/usage_totals.hpp"

namespace billing::ctl {
namespace {

using google::protobuf::util::TimeUtil;

std::string when(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  return TimeUtil::ToString(ts);
}

std::string number(uint64_t value) {
  return std::to_string(value);
}

// A usage total: its exact decimal twin (past 2^64 the uint64 field
// saturates), or the uint64 from a server that predates the twins.
std::string exact_total(const std::string& decimal, uint64_t value) {
  return decimal.empty() ? number(value) : decimal;
}

// Exact VM-hours (ns / 3.6e12) to 3 decimals, truncated: integers only, in
// 128 bits since a customer's month passes 2^64 ns.
std::string hours(const std::string& decimal, uint64_t value) {
  model::usage_sum nanos = value;
  if (!decimal.empty()) {
    nanos = 0;
    for (char digit : decimal) nanos = nanos * 10 + static_cast<model::usage_sum>(digit - '0');
  }
  constexpr model::usage_sum kNanosPerHour = 3'600'000'000'000;
  return fmt::format("{}.{:03}", model::format_usage_sum(nanos / kNanosPerHour),
                     static_cast<uint64_t>(nanos % kNanosPerHour / (kNanosPerHour / 1000)));
}

const std::vector<std::string> kTotalsHeader = {"vm_hours",   "cpu_ns",    "mem_byte_s",
                                                "mem_peak_b", "disk_rd_b", "disk_wr_b",
                                                "net_rx_b",   "net_tx_b",  "windows"};

std::vector<std::string> totals_cells(const v1::UsageTotals& t) {
  return {
      hours(t.vm_active_nanos_decimal(), t.vm_active_nanos()),
      exact_total(t.cpu_time_nanos_decimal(), t.cpu_time_nanos()),
      exact_total(t.memory_bytes_seconds_decimal(), t.memory_bytes_seconds()),
      number(t.memory_bytes_peak()),
      exact_total(t.disk_read_bytes_decimal(), t.disk_read_bytes()),
      exact_total(t.disk_write_bytes_decimal(), t.disk_write_bytes()),
      exact_total(t.network_rx_bytes_decimal(), t.network_rx_bytes()),
      exact_total(t.network_tx_bytes_decimal(), t.network_tx_bytes()),
      exact_total(t.window_count_decimal(), t.window_count())};
}

std::vector<std::string> with_totals(std::vector<std::string> head, const v1::UsageTotals& t) {
  auto cells = totals_cells(t);
  head.insert(head.end(), cells.begin(), cells.end());
  return head;
}

table totals_table(std::vector<std::string> head) {
  head.insert(head.end(), kTotalsHeader.begin(), kTotalsHeader.end());
  return table{std::move(head)};
}

void section(std::FILE* out, std::string_view title) {
  fmt::print(out, "\n{}\n", title);
}

std::string_view dimension_name(v1::Dimension dimension) {
  switch (dimension) {
    case v1::DIMENSION_CPU:
      return "cpu";
    case v1::DIMENSION_MEMORY:
      return "memory";
    case v1::DIMENSION_DISK_READ:
      return "disk_read";
    case v1::DIMENSION_DISK_WRITE:
      return "disk_write";
    case v1::DIMENSION_NETWORK_RX:
      return "network_rx";
    case v1::DIMENSION_NETWORK_TX:
      return "network_tx";
    case v1::DIMENSION_VM_TIME:
      return "vm_time";
    default:
      return "-";
  }
}

std::string_view line_kind_name(v1::LineKind kind) {
  switch (kind) {
    case v1::LINE_KIND_USAGE:
      return "usage";
    case v1::LINE_KIND_BASE_FEE:
      return "base_fee";
    case v1::LINE_KIND_MINIMUM:
      return "minimum";
    case v1::LINE_KIND_ADJUSTMENT:
      return "adjustment";
    default:
      return "-";
  }
}

std::string or_dash(const std::string& text) {
  return text.empty() ? "-" : text;
}

}  // namespace

void print_json(std::FILE* out, const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  fmt::print(out, "{}\n", json);
}

void print_usage(std::FILE* out, const v1::GetCustomerUsageResponse& usage) {
  fmt::print(out, "customer {}\n", usage.customer_id());
  auto total = totals_table({});
  total.add_row(totals_cells(usage.totals()));
  total.print(out);
  section(out, "buckets");
  auto buckets = totals_table({"start", "end"});
  for (const auto& b : usage.buckets()) {
    buckets.add_row(with_totals({when(b.bucket_start()), when(b.bucket_end())}, b.totals()));
  }
  buckets.print(out);
  section(out, "regions");
  auto regions = totals_table({"region"});
  for (const auto& r : usage.regions()) regions.add_row(with_totals({r.region()}, r.totals()));
  regions.print(out);
  section(out, "vms");
  auto vms = totals_table({"vm", "region", "first_seen", "last_seen"});
  for (const auto& vm : usage.vms()) {
    vms.add_row(with_totals({vm.vm_id(), vm.region(), when(vm.first_seen()), when(vm.last_seen())},
                            vm.totals()));
  }
  vms.print(out);
}

void print_window(std::FILE* out, const v1::GetBillingWindowResponse& window) {
  fmt::print(out, "customer {}  cost {}\n", window.customer_id(),
             window.cost().empty() ? "(no plan)" : window.cost());
  auto total = totals_table({});
  total.add_row(totals_cells(window.totals()));
  total.print(out);
  section(out, "vms");
  auto vms = totals_table({"vm", "region", "spans"});
  for (const auto& vm : window.vms()) {
    vms.add_row(with_totals(
        {vm.vm_id(), vm.region(), number(static_cast<uint64_t>(vm.spans_size()))}, vm.totals()));
  }
  vms.print(out);
  section(out, "active spans");
  table spans{{"vm", "region", "start", "end"}};
  for (const auto& vm : window.vms()) {
    for (const auto& span : vm.spans()) {
      spans.add_row({vm.vm_id(), vm.region(), when(span.start_time()), when(span.end_time())});
    }
  }
  spans.print(out);
  section(out, "gaps");
  table gaps{{"vm", "region", "start", "end", "interpolated_mem_byte_s"}};
  for (const auto& gap : window.gaps()) {
    gaps.add_row({gap.vm_id(), gap.region(), when(gap.start_time()), when(gap.end_time()),
                  gap.interpolated() ? exact_total(gap.interpolated_memory_bytes_seconds_decimal(),
                                                  gap.interpolated_memory_bytes_seconds())
                                          : "-"});
  }
  gaps.print(out);
}

void print_invoice(std::FILE* out, const v1::Invoice& invoice) {
  fmt::print(out, "invoice {} for {}  period {} .. {}  {}\n",
             invoice.finalized() ? fmt::format("#{}", invoice.number()) : std::string{"(draft)"},
             invoice.customer_id(), when(invoice.period_start()), when(invoice.period_end()),
             invoice.finalized() ? "finalized " + when(invoice.finalized_at()) : "not finalized");
  table lines{
      {"kind", "dimension", "region", "tier", "quantity", "unit", "rate", "multiplier", "amount"}};
  for (const auto& line : invoice.lines()) {
    lines.add_row({std::string{line_kind_name(line.kind())},
                   std::string{dimension_name(line.dimension())}, or_dash(line.region()),
                   line.tier() ? number(line.tier()) : "-", or_dash(line.quantity()),
                   or_dash(line.unit()), or_dash(line.rate()), or_dash(line.multiplier()),
                   or_dash(line.amount())});
  }
  lines.print(out);
  section(out, "vms");
  table vms{{"vm", "region", "hours", "start", "stop"}};
  for (const auto& vm : invoice.vms()) {
    vms.add_row({vm.vm_id(), vm.region(), vm.hours(), when(vm.start_time()), when(vm.stop_time())});
  }
  vms.print(out);
  fmt::print(out, "\nusage subtotal {}\nsubtotal       {}\nadjustments    {}\ntotal          {}\n",
             or_dash(invoice.usage_subtotal()), or_dash(invoice.subtotal()),
             or_dash(invoice.adjustments()), or_dash(invoice.total()));
  if (!invoice.content_hash().empty())
    fmt::print(out, "content hash   {}\n", invoice.content_hash());
}

void print_invoice_list(std::FILE* out,
                        const google::protobuf::RepeatedPtrField<v1::Invoice>& invoices) {
  table list{{"number", "customer", "period_start", "total", "finalized_at", "content_hash"}};
  for (const auto& invoice : invoices) {
    list.add_row({number(invoice.number()), invoice.customer_id(), when(invoice.period_start()),
                  invoice.total(), when(invoice.finalized_at()), or_dash(invoice.content_hash())});
  }
  list.print(out);
}

void print_plan(std::FILE* out,
                const google::protobuf::RepeatedPtrField<v1::PlanVersion>& versions) {
  if (versions.empty()) fmt::print(out, "no plan versions\n");
  for (const auto& version : versions) {
    fmt::print(out, "version effective from {}  base fee {}  minimum {}\n",
               when(version.effective_from()), or_dash(version.monthly_base_fee()),
               or_dash(version.monthly_minimum()));
    table prices{{"dimension", "tier", "up_to", "price"}};
    for (const auto& price : version.prices()) {
      for (int i = 0; i < price.tiers_size(); ++i) {
        prices.add_row({std::string{dimension_name(price.dimension())},
                        number(static_cast<uint64_t>(i + 1)), or_dash(price.tiers(i).up_to()),
                        price.tiers(i).price()});
      }
    }
    prices.print(out);
    if (!version.region_multipliers().empty()) {
      table multipliers{{"region", "multiplier"}};
      for (const auto& [region, multiplier] : version.region_multipliers()) {
        multipliers.add_row({region, multiplier});
      }
      multipliers.print(out);
    }
  }
}

void print_backup(std::FILE* out, const v1::CreateBackupResponse& backup) {
  table info{{"backup_id", "created_at", "size_bytes", "files"}};
  info.add_row({number(backup.backup_id()), when(backup.created_at()), number(backup.size_bytes()),
                number(backup.file_count())});
  info.print(out);
}

void print_audit(std::FILE* out, const v1::VerifyAuditChainResponse& audit) {
  fmt::print(out, "audit chain {}: {} entries verified, head #{} {}\n",
             audit.intact() ? "intact" : "BROKEN", audit.entries_verified(), audit.head_sequence(),
             or_dash(audit.head_hash()));
  if (!audit.intact()) {
    fmt::print(out, "problem: {} (first bad entry #{})\n", audit.problem(),
               audit.first_bad_sequence());
  }
}

void print_update(std::FILE* out, const v1::UsageUpdate& update) {
  const auto& d = update.delta();
  const auto& m = update.month_to_date();
  fmt::print(out,
             "{} #{} {} {}: +{} windows +{} cpu_ns +{} mem_byte_s | month: {} vm_hours {} cpu_ns "
             "{} windows\n",
             when(update.as_of()), update.sequence(), update.customer_id(),
             update.snapshot() ? "snapshot" : "update",
             exact_total(d.window_count_decimal(), d.window_count()),
             exact_total(d.cpu_time_nanos_decimal(), d.cpu_time_nanos()),
             exact_total(d.memory_bytes_seconds_decimal(), d.memory_bytes_seconds()),
             hours(m.vm_active_nanos_decimal(), m.vm_active_nanos()),
             exact_total(m.cpu_time_nanos_decimal(), m.cpu_time_nanos()),
             exact_total(m.window_count_decimal(), m.window_count()));
  std::fflush(out);
}

}  // namespace billing::ctl
