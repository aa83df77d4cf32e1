#include "app/dump.hpp"

#include <google/protobuf/util/json_util.h>

#include <fmt/format.h>

#include <limits>

#include "gateway/services/admin_service.hpp"
#include "gateway/services/convert.hpp"
#include "observability/log.hpp"
#include "storage/keys.hpp"
#include "storage/replication_log.hpp"

namespace billing::app {
namespace {

google::protobuf::util::JsonPrintOptions json_options() {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  return options;
}

}  // namespace

status dump_windows(const storage::ledger_store& store, const std::string& customer_id,
                    std::ostream& out) {
  status failure;
  const auto options = json_options();
  status scanned = store.scan_windows(
      customer_id, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
      [&](const model::usage_window& window) {
        std::string json;
        auto printed =
            google::protobuf::util::MessageToJsonString(gateway::to_proto(window), &json, options);
        if (!printed.ok()) {
          failure = status{status_code::internal, std::string{printed.message()}};
          return false;
        }
        out << json << '\n';
        return true;
      });
  if (!scanned.ok()) return scanned;
  return failure;
}

namespace {

// The batch fields every audit line starts with.
std::string batch_fields(std::string_view kind, const model::batch_meta& meta) {
  using observability::json_escape;
  return fmt::format(
      R"({{"kind":"{}","batch_id":"{}","instance_id":"{}","region":"{}","received_at_ns":{})", kind,
      json_escape(meta.batch_id), json_escape(meta.instance_id), json_escape(meta.region),
      meta.received_at_ns);
}

}  // namespace

status dump_audit(const storage::ledger_store& store, const std::string& customer_id,
                  std::ostream& out) {
  status ingests = store.scan_ingest_records(customer_id, [&](const storage::ingest_record& r) {
    out << batch_fields("ingest", r.meta)
        << fmt::format(R"(,"caller":"{}","accepted":{},"duplicate":{},"rejected":{}}})",
                       observability::json_escape(r.meta.caller), r.accepted, r.duplicate,
                       r.rejected)
        << '\n';
    return true;
  });
  if (!ingests.ok()) return ingests;
  return store.scan_conflicts(customer_id, [&](const storage::conflict_record& c) {
    out << batch_fields("conflict", c.meta)
        << fmt::format(R"(,"vm_id":"{}","window_start_ns":{}}})",
                       observability::json_escape(c.attempted.vm_id), c.attempted.window_start_ns)
        << '\n';
    return true;
  });
}

result<storage::audit_chain_report> verify_audit(const storage::ledger_store& store,
                                                 std::ostream& out) {
  auto report = store.verify_audit_chain();
  if (!report.ok()) return report.error();
  std::string json;
  auto printed = google::protobuf::util::MessageToJsonString(
      gateway::to_verify_response(report.value()), &json, json_options());
  if (!printed.ok()) return status{status_code::internal, std::string{printed.message()}};
  out << json << '\n';
  return report;
}

namespace {

void append_hex(std::string& line, std::string_view bytes) {
  constexpr std::string_view digits = "0123456789abcdef";
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    line += digits[byte >> 4];
    line += digits[byte & 0xf];
  }
}

}  // namespace

status dump_replicated(const storage::ledger_store& store, std::ostream& out) {
  std::string line;
  for (const uint32_t which : storage::replicated_families()) {
    const std::string_view name = storage::family_names[which];
    status scanned = store.scan_range(which, "", std::nullopt,
                                      [&](std::string_view key, std::string_view value) {
                                        line.assign(name);
                                        line += '\t';
                                        append_hex(line, key);
                                        line += '\t';
                                        append_hex(line, value);
                                        line += '\n';
                                        out << line;
                                        return true;
                                      });
    if (!scanned.ok()) return scanned;
  }
  return status::ok_status();
}

}  // namespace billing::app
