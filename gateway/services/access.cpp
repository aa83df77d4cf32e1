#include "gateway/services/access.hpp"

namespace billing::gateway {

result<security::principal> authorize(const security::authenticator* auth,
                                      const call_context& context,
                                      const security::access_requirement& need) {
  if (auth == nullptr) {
    return status{status_code::internal, "no authenticator is configured for this service"};
  }
  return auth->authorize(context.header("authorization"), context.client_identity, need);
}

}  // namespace billing::gateway
