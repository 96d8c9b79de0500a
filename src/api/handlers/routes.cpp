#include "api/handlers/handlers.h"

namespace rv::api {

void add_api_routes(Router& router, VmmApi& vmm) {
    add_instance_routes(router, vmm);
    add_boot_source_routes(router, vmm);
    add_machine_config_routes(router, vmm);
    add_drive_routes(router, vmm);
    add_network_interface_routes(router, vmm);
    add_entropy_routes(router, vmm);
    add_rate_limit_group_routes(router, vmm);
    add_logger_routes(router, vmm);
    add_metrics_routes(router, vmm);
    add_action_routes(router, vmm);
    add_vm_routes(router, vmm);
    add_snapshot_routes(router, vmm);
}

}  // namespace rv::api
