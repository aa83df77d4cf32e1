#include "gateway/services/access.hpp"

namespace billing::gateway {

result<security::principal> authorize(const security::authenticator* auth,
                                      const call_context& context,
                                      const security::access_requirement& need) {
  if (auth == nullptr) {
    return status{status_code::internal, "no authenticator is configured for this service"};
  }
  auto caller = auth->authenticate(context.header("authorization"));
  if (!caller.ok()) return caller.error();
  if (status allowed = security::check_scope(caller.value(), need); !allowed.ok()) return allowed;
  return caller;
}

}  // namespace billing::gateway
