// PUT /actions: InstanceStart, SendCtrlAltDel, FlushMetrics.
#include "api/handlers/handlers.h"
#include "vmm/config_json.h"

namespace rv::api {

void add_action_routes(Router& router, VmmApi& vmm) {
    router.add(http::verb::put, "/actions",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   auto action = RV_TRY(action_from_json(body));
                   return vmm.action(action);
               }));
}

}  // namespace rv::api
