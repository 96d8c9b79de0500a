// PUT /entropy: a virtio-rng device, optionally rate limited. Pre-boot only.
#include "api/handlers/handlers.h"
#include "vmm/config_json.h"

namespace rv::api {

void add_entropy_routes(Router& router, VmmApi& vmm) {
    router.add(http::verb::put, "/entropy",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   auto entropy = RV_TRY(entropy_from_json(body));
                   return vmm.put_entropy(entropy);
               }));
}

}  // namespace rv::api
