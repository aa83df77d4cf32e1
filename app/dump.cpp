#include "app/dump.hpp"

#include <google/protobuf/util/json_util.h>

#include <limits>

#include "gateway/services/convert.hpp"

namespace billing::app {

status dump_windows(const storage::ledger_store& store, const std::string& customer_id,
                    std::ostream& out) {
  status failure;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
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

}  // namespace billing::app
