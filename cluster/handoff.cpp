#include "cluster/handoff.hpp"

#include <fmt/format.h>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include "actors/messages.hpp"

namespace billing::cluster {
namespace {

constexpr uint8_t kFormatVersion = 1;
constexpr uint8_t kPartKind = 1;
constexpr uint8_t kMetaldKind = 2;

template <class T>
result<std::string> serialize(caf::actor_system& system, uint8_t kind, T& value) {
  std::vector<char> buffer{static_cast<char>(kFormatVersion), static_cast<char>(kind)};
  caf::binary_serializer sink{system, buffer};
  if (auto error = sink(value)) {
    return status{status_code::internal,
                  fmt::format("cannot encode a handoff record: {}", caf::to_string(error))};
  }
  return std::string(buffer.begin(), buffer.end());
}

template <class T>
result<handoff_message> deserialize(caf::actor_system& system, std::string_view bytes) {
  T value;
  caf::binary_deserializer source{system, bytes.data(), bytes.size()};
  if (auto error = source(value)) {
    return status{status_code::data_loss,
                  fmt::format("corrupt handoff record: {}", caf::to_string(error))};
  }
  return handoff_message{std::move(value)};
}

}  // namespace

result<std::string> encode_handoff(caf::actor_system& system, handoff_message& message) {
  if (auto* part = std::get_if<model::customer_part>(&message)) {
    return serialize(system, kPartKind, *part);
  }
  return serialize(system, kMetaldKind, std::get<model::metald_op>(message));
}

result<handoff_message> decode_handoff(caf::actor_system& system, std::string_view value) {
  if (value.size() < 2 || static_cast<uint8_t>(value[0]) != kFormatVersion) {
    return status{status_code::data_loss, "handoff record of an unknown format"};
  }
  const auto kind = static_cast<uint8_t>(value[1]);
  value.remove_prefix(2);
  if (kind == kPartKind) return deserialize<model::customer_part>(system, value);
  if (kind == kMetaldKind) return deserialize<model::metald_op>(system, value);
  return status{status_code::data_loss, fmt::format("handoff record of unknown kind {}", kind)};
}

const std::string& handoff_customer(const handoff_message& message) {
  return std::visit([](const auto& m) -> const std::string& { return m.customer_id; }, message);
}

}  // namespace billing::cluster
