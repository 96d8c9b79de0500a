// GET / (InstanceInfo) and GET /version (FirecrackerVersion).
#include "api/handlers/handlers.h"
#include "vmm/config_json.h"

namespace rv::api {

void add_instance_routes(Router& router, VmmApi& vmm) {
    router.add(http::verb::get, "/", [&vmm](const ApiRequest&) {
        const InstanceInfo info = vmm.instance_info();
        return ok({{"id", info.id},
                   {"state", std::string(state_name(info.state))},
                   {"vmm_version", info.vmm_version},
                   {"app_name", info.app_name}});
    });
    // Firecracker's clients read firecracker_version; it carries ours.
    router.add(http::verb::get, "/version", [&vmm](const ApiRequest&) {
        return ok({{"firecracker_version", vmm.version()}});
    });
}

}  // namespace rv::api
