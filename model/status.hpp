// Errors as values: a Connect-style status code with a message, and
// result<T> holding either a value or a status.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace billing {

// The Connect protocol's error codes; `ok` means success.
enum class status_code : uint8_t {
  ok = 0,
  canceled,
  unknown,
  invalid_argument,
  deadline_exceeded,
  not_found,
  already_exists,
  permission_denied,
  resource_exhausted,
  failed_precondition,
  aborted,
  out_of_range,
  unimplemented,
  internal,
  unavailable,
  data_loss,
  unauthenticated,
};

// The Connect wire name, e.g. "invalid_argument".
std::string_view to_string(status_code code);

class [[nodiscard]] status {
 public:
  status() = default;
  status(status_code code, std::string message) : code_(code), message_(std::move(message)) {}

  static status ok_status() { return {}; }

  bool ok() const { return code_ == status_code::ok; }
  status_code code() const { return code_; }
  const std::string& message() const { return message_; }

  // A hint for overload answers (resource_exhausted, unavailable): when a
  // retry may succeed. The gateway sends it as an HTTP Retry-After header.
  uint32_t retry_after_seconds() const { return retry_after_seconds_; }
  status&& with_retry_after(uint32_t seconds) && {
    retry_after_seconds_ = seconds;
    return std::move(*this);
  }

 private:
  status_code code_ = status_code::ok;
  std::string message_;
  uint32_t retry_after_seconds_ = 0;
};

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : state_(std::move(value)) {}
  result(status error) : state_(std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

  // The error; only meaningful when !ok().
  const status& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, status> state_;
};

// The first failed check, or ok.
inline status first_error(std::initializer_list<status> checks) {
  for (const auto& check : checks) {
    if (!check.ok()) return check;
  }
  return status::ok_status();
}

}  // namespace billing
