// PUT /metrics: the file or FIFO metrics are written to.
#include "api/handlers/handlers.h"
#include "vmm/config_json.h"

namespace rv::api {

void add_metrics_routes(Router& router, VmmApi& vmm) {
    router.add(http::verb::put, "/metrics",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   auto metrics = RV_TRY(metrics_from_json(body));
                   return vmm.put_metrics(metrics);
               }));
}

}  // namespace rv::api
