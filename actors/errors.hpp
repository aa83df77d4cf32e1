// Bridges billing::status and caf::error, so that a status travels through
// actor responses unchanged: the error code is the status_code and the
// category is the atom "connect".
#pragma once

#include <caf/error.hpp>

#include "model/status.hpp"

namespace billing::actors {

caf::error to_error(const status& s);

// Our own errors map back exactly; CAF's (timeouts, dead actors, ...) map to
// the nearest Connect code.
status to_status(const caf::error& e);

}  // namespace billing::actors
