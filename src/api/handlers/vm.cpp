// PATCH /vm (pause or resume the guest), GET /vm/config (the whole
// configuration, in --config-file's shape) and GET /accounting.
#include "api/handlers/handlers.h"
#include "vmm/config_json.h"

namespace rv::api {

void add_vm_routes(Router& router, VmmApi& vmm) {
    router.add(http::verb::patch, "/vm", command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   const bool paused = RV_TRY(vm_state_from_json(body));
                   return paused ? vmm.pause() : vmm.resume();
               }));
    router.add(http::verb::get, "/vm/config",
               [&vmm](const ApiRequest&) { return ok(config_to_json(vmm.full_config())); });
    // ringvisor's extension: the VM's accounting totals (vmm/accounting.h).
    router.add(http::verb::get, "/accounting", [&vmm](const ApiRequest&) {
        auto totals = vmm.accounting();
        return totals ? ok(std::move(*totals)) : fault(totals.error());
    });
}

}  // namespace rv::api
