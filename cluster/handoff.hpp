// Hinted handoff records: a customer part or a metald operation that this
// node acknowledged for an owner node it could not reach, kept in the
// ledger's handoff family until the owner stored it. Both kinds are
// idempotent on the owner (dedup by window identity; metald by VM watermark),
// so delivering one twice is harmless.
#pragma once

#include <caf/fwd.hpp>

#include <cstdint>
#include <string>
#include <variant>

#include "model/ingest.hpp"
#include "model/metald.hpp"
#include "model/status.hpp"

namespace billing::cluster {

using handoff_message = std::variant<model::customer_part, model::metald_op>;

// Value layout: u8 format version (1) | u8 kind (1 part, 2 metald op) | the
// message in CAF's binary serialization (the same bytes CAF sends between
// nodes; actors/messages.hpp has the inspect overloads).
result<std::string> encode_handoff(caf::actor_system& system, handoff_message& message);
result<handoff_message> decode_handoff(caf::actor_system& system, std::string_view value);

// The customer a handoff message belongs to.
const std::string& handoff_customer(const handoff_message& message);

}  // namespace billing::cluster
