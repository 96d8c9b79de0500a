// PUT|PATCH /network-interfaces/{iface_id}. PUT creates a NIC (pre-boot);
// PATCH replaces its rate limiters. The body's iface_id must be the path's.
#include "api/handlers/handlers.h"
#include "vmm/config_json.h"

namespace rv::api {

void add_network_interface_routes(Router& router, VmmApi& vmm) {
    router.add(http::verb::put, "/network-interfaces/{iface_id}",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   auto net = RV_TRY(net_from_json(request.param("iface_id"), body));
                   return vmm.put_network_interface(net);
               }));
    router.add(http::verb::patch, "/network-interfaces/{iface_id}",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   auto update = RV_TRY(net_update_from_json(request.param("iface_id"), body));
                   return vmm.patch_network_interface(update);
               }));
}

}  // namespace rv::api
