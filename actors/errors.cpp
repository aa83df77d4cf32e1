#include "actors/errors.hpp"

#include <caf/atom.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace billing::actors {
namespace {

constexpr caf::atom_value kConnectCategory = caf::atom("connect");

}  // namespace

caf::error to_error(const status& s) {
  return caf::error{static_cast<uint8_t>(s.code()), kConnectCategory,
                    caf::make_message(s.message())};
}

status to_status(const caf::error& e) {
  if (!e) return status::ok_status();
  if (e.category() == kConnectCategory) {
    std::string message;
    if (e.context().match_elements<std::string>()) message = e.context().get_as<std::string>(0);
    return {static_cast<status_code>(e.code()), std::move(message)};
  }
  if (e.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(e.code())) {
      case caf::sec::request_timeout:
        return {status_code::deadline_exceeded, "the request timed out inside the service"};
      case caf::sec::request_receiver_down:
        return {status_code::unavailable, "the actor handling the request is gone; retry"};
      default:
        break;
    }
  }
  return {status_code::internal, "internal error: " + caf::to_string(e)};
}

}  // namespace billing::actors
