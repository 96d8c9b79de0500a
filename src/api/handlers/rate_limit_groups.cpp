// PUT /rate-limit-groups/{id} (ringvisor's extension, Cloud Hypervisor's
// rate_limit_group): buckets that every drive naming the group draws from,
// shared with other VMs on the host that define the same group
// (devices/rate_limit_group.h). Pre-boot only; the body's id must be the
// path's.
#include "api/handlers/handlers.h"
#include "vmm/config_json.h"

namespace rv::api {

void add_rate_limit_group_routes(Router& router, VmmApi& vmm) {
    router.add(http::verb::put, "/rate-limit-groups/{id}",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   auto group = RV_TRY(rate_limit_group_from_json(request.param("id"), body));
                   return vmm.put_rate_limit_group(group);
               }));
}

}  // namespace rv::api
