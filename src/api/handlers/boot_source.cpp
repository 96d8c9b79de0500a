// PUT /boot-source: kernel, initrd and command line. Pre-boot only.
#include "api/handlers/handlers.h"
#include "vmm/config_json.h"

namespace rv::api {

void add_boot_source_routes(Router& router, VmmApi& vmm) {
    router.add(http::verb::put, "/boot-source",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   auto boot = RV_TRY(boot_source_from_json(body));
                   return vmm.set_boot_source(boot);
               }));
}

}  // namespace rv::api
