// billingctl's exit codes: what failed, for scripts. Documented in README.md
// ("billingctl"); tests/e2e/billingctl.test.mjs checks them.
#pragma once

#include "model/status.hpp"

namespace billing::ctl {

inline constexpr int exit_ok = 0;
// Bad command line: unknown command or flag, missing or malformed argument.
inline constexpr int exit_usage = 2;
// The server could not be reached or talked to (refused, TLS, timeout, reset).
inline constexpr int exit_transport = 3;
// The server answered something that is not a Connect answer we can read.
inline constexpr int exit_protocol = 4;
// The call succeeded but what it checked failed (verify-audit: chain broken).
inline constexpr int exit_check_failed = 5;
// A Connect error from the server: 10 + its code number (invalid_argument
// 13, not_found 15, permission_denied 17, resource_exhausted 18,
// failed_precondition 19, unavailable 24, unauthenticated 26, ...).
inline constexpr int exit_connect_base = 10;

inline int exit_for_connect_code(status_code code) {
  return exit_connect_base + static_cast<int>(code);
}

}  // namespace billing::ctl
