#include "app/dump.hpp"

#include <google/protobuf/util/json_util.h>

#include <limits>

#include "gateway/services/admin_service.hpp"
#include "gateway/services/convert.hpp"

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

result<bool> verify_audit(const storage::ledger_store& store, std::ostream& out) {
  auto report = store.verify_audit_chain();
  if (!report.ok()) return report.error();
  std::string json;
  auto printed = google::protobuf::util::MessageToJsonString(
      gateway::to_verify_response(report.value()), &json, json_options());
  if (!printed.ok()) return status{status_code::internal, std::string{printed.message()}};
  out << json << '\n';
  return report.value().intact;
}

}  // namespace billing::app
