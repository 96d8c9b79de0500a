// PUT /logger: where the VMM's log goes and how much of it.
#include "api/handlers/handlers.h"
#include "vmm/config_json.h"

namespace rv::api {

void add_logger_routes(Router& router, VmmApi& vmm) {
    router.add(http::verb::put, "/logger",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   auto logger = RV_TRY(logger_from_json(body));
                   return vmm.put_logger(logger);
               }));
}

}  // namespace rv::api
