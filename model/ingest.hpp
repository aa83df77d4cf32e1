// The messages of an ingest: a batch in, one outcome per item out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/trace_parent.hpp"
#include "model/usage_window.hpp"

namespace billing::model {

enum class item_status : uint8_t { accepted = 1, duplicate = 2, rejected = 3 };

// Mirrors billing.v1.RejectReason (same numbers).
enum class reject_reason : uint8_t {
  none = 0,
  missing_id = 1,
  invalid_id = 2,
  invalid_window = 3,
  timestamp_out_of_range = 4,
  implausible_value = 5,
  region_mismatch = 6,
  unknown_region = 7,
  conflicting_duplicate = 8,
  total_out_of_range = 9,
};

struct item_outcome {
  uint32_t index = 0;  // position in the client's request
  item_status status = item_status::accepted;
  reject_reason reason = reject_reason::none;
  std::string message;

  static item_outcome accepted(uint32_t index) { return {index, item_status::accepted, {}, {}}; }
  static item_outcome duplicate(uint32_t index) { return {index, item_status::duplicate, {}, {}}; }
  static item_outcome rejected(uint32_t index, reject_reason why, std::string message) {
    return {index, item_status::rejected, why, std::move(message)};
  }
};

// Who sent a batch and when we received it; carried into the audit trail.
struct batch_meta {
  std::string batch_id;
  std::string instance_id;
  std::string region;
  int64_t received_at_ns = 0;
  // Who sent it, as authenticated: the bearer token's name (instance_id is
  // only what the sender claims). Empty without auth.
  std::string caller;
  // The span of the call that delivers it, for the commit's spans. Local
  // only: not in the messages' inspect (peers and stored hand-offs keep
  // their format), so a part forwarded to another node is not traced there.
  trace_parent trace = {};
};

// A batch as the gateway hands it to a regional ingest actor.
struct ingest_batch {
  batch_meta meta;
  std::vector<usage_window> windows;
};

// The part of a batch that belongs to one customer; `indices[i]` is the
// request position of `windows[i]`.
struct customer_part {
  std::string customer_id;
  batch_meta meta;
  std::vector<uint32_t> indices;
  std::vector<usage_window> windows;
};

// One outcome per item of the batch, in request order.
struct ingest_report {
  std::vector<item_outcome> outcomes;
};

}  // namespace billing::model
