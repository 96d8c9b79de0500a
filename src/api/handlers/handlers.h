// Firecracker's resources, one file each (handlers/<resource>.cpp): each
// add_*_routes puts its methods on the router, calling `vmm`, which must
// outlive the router. Bodies are read by vmm/config_json.h; answers are
// api/response.h's (200 + JSON, 204, or a fault with 400 / 500).
#pragma once

#include <utility>

#include "api/response.h"
#include "api/router.h"
#include "vmm/vmm_api.h"

namespace rv::api {

void add_instance_routes(Router& router, VmmApi& vmm);        // GET /, GET /version
void add_boot_source_routes(Router& router, VmmApi& vmm);     // PUT /boot-source
void add_machine_config_routes(Router& router, VmmApi& vmm);  // GET|PUT|PATCH /machine-config
void add_drive_routes(Router& router, VmmApi& vmm);           // PUT|PATCH /drives/{drive_id}
void add_network_interface_routes(Router& router,
                                  VmmApi& vmm);        // PUT|PATCH /network-interfaces/{iface_id}
void add_entropy_routes(Router& router, VmmApi& vmm);  // PUT /entropy
void add_rate_limit_group_routes(Router& router, VmmApi& vmm);  // PUT /rate-limit-groups/{id}
void add_logger_routes(Router& router, VmmApi& vmm);   // PUT /logger
void add_metrics_routes(Router& router, VmmApi& vmm);  // PUT /metrics
void add_action_routes(Router& router, VmmApi& vmm);   // PUT /actions
void add_vm_routes(Router& router, VmmApi& vmm);  // PATCH /vm, GET /vm/config, GET /accounting
// PUT /snapshot/create, /snapshot/load; PUT|GET /migrate, PUT /migrate/cancel
void add_snapshot_routes(Router& router, VmmApi& vmm);

// All of the above: the API ApiServer::start serves.
void add_api_routes(Router& router, VmmApi& vmm);

// A PUT or PATCH written as one Result<void> (RV_TRY through reading the
// body, converting it, calling the VMM): 204, or the first error's fault.
template <typename Fn>
Handler command(Fn fn) {
    return [fn = std::move(fn)](const ApiRequest& request) { return reply(fn(request)); };
}

}  // namespace rv::api
