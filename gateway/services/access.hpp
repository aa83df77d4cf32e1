// Authorization of a Connect call: the one function every service calls
// before doing anything on behalf of the caller.
#pragma once

#include <memory>

#include "gateway/connect_server.hpp"
#include "security/auth.hpp"

namespace billing::gateway {

// Authenticates the call's `Authorization: Bearer <token>` header and/or its
// verified client certificate (call_context::client_identity) with `auth`
// and checks that the scopes of one of them meet `need`. Returns the caller
// (its name keys rate limits) or the status to answer with, unchanged:
//   - unauthenticated: no, malformed or unknown credentials;
//   - permission_denied: a valid token, or a verified certificate, whose
//     scopes do not cover `need` (a certificate mapped to none included);
//   - internal: `auth` is null (a wiring bug; never lets a call through).
// Call it first in a handler, before reading or writing anything. E.g. in a
// query handler (GetCustomerUsage, GetBillingWindow, StreamLiveUsage):
//
//   auto caller = authorize(settings.auth.get(), context,
//                           security::require_customer(request.customer_id()));
//   if (!caller.ok()) { respond(caller.error()); return; }
//
// A `customer:<id>` token passes only for that exact id; `admin` passes for
// every customer; `ingest` tokens never read usage. Health, readiness and
// /metrics GETs are not Connect calls and are not authorized.
result<security::principal> authorize(const security::authenticator* auth,
                                      const call_context& context,
                                      const security::access_requirement& need);

}  // namespace billing::gateway
