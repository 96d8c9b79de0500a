// PUT /snapshot/create (a full snapshot of the paused VM) and PUT
// /snapshot/load (a fresh process becomes the snapshot's VM).
#include "api/handlers/handlers.h"
#include "vmm/config_json.h"

namespace rv::api {

void add_snapshot_routes(Router& router, VmmApi& vmm) {
    router.add(http::verb::put, "/snapshot/create",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   return vmm.create_snapshot(RV_TRY(snapshot_create_from_json(body)));
               }));
    router.add(http::verb::put, "/snapshot/load",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   return vmm.load_snapshot(RV_TRY(snapshot_load_from_json(body)));
               }));
    // ringvisor's extension: live migration to a `run --incoming` process.
    router.add(http::verb::put, "/migrate",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   return vmm.start_migration(RV_TRY(migration_from_json(body)));
               }));
    router.add(http::verb::get, "/migrate", [&vmm](const ApiRequest&) {
        return ok(migration_status_to_json(vmm.migration_status()));
    });
    router.add(http::verb::put, "/migrate/cancel",
               command([&vmm](const ApiRequest&) -> Result<void> { return vmm.cancel_migration(); }));
}

}  // namespace rv::api
