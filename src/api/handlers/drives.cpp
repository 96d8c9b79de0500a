// PUT|PATCH /drives/{drive_id}. PUT creates or (pre-boot) replaces a drive;
// PATCH changes its backing file or rate limiter (after start: a media
// change). The body's drive_id must be the path's.
#include "api/handlers/handlers.h"
#include "vmm/config_json.h"

namespace rv::api {

void add_drive_routes(Router& router, VmmApi& vmm) {
    router.add(http::verb::put, "/drives/{drive_id}",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   auto drive = RV_TRY(drive_from_json(request.param("drive_id"), body));
                   return vmm.put_drive(drive);
               }));
    router.add(http::verb::patch, "/drives/{drive_id}",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   auto update = RV_TRY(drive_update_from_json(request.param("drive_id"), body));
                   return vmm.patch_drive(update);
               }));
}

}  // namespace rv::api
