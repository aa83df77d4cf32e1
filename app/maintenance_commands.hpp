// billingd's maintenance commands, which run on a stopped node's ledger and
// exit: --dump-windows, --dump-audit, --dump-replicated, --verify-audit and
// --restore-from (README "Operations").
#pragma once

#include <optional>

#include "app/config.hpp"

namespace billing::app {

// The exit code of the maintenance command `config` names, or nullopt when it
// names none (billingd then serves).
std::optional<int> run_maintenance_command(const billingd_config& config);

}  // namespace billing::app
