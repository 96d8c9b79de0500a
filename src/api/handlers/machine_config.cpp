// GET|PUT|PATCH /machine-config: vCPUs, memory, SMT, dirty page tracking, and
// ringvisor's CPU policy (cpu_weight, cpu_max, cpuset). PUT sets all of them
// (what it leaves out goes back to its default, as Firecracker does); PATCH
// only what it names. PUT is pre-boot only; after start, PATCH may change
// the CPU policy (the VM's cgroup) and nothing else.
#include "api/handlers/handlers.h"
#include "vmm/config_json.h"

namespace rv::api {

void add_machine_config_routes(Router& router, VmmApi& vmm) {
    router.add(http::verb::get, "/machine-config", [&vmm](const ApiRequest&) {
        return ok(machine_config_to_json(vmm.machine_config()));
    });
    router.add(http::verb::put, "/machine-config",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   auto config = RV_TRY(machine_config_from_json(body, /*partial=*/false));
                   // machine_config_from_json requires both for a PUT; checked again
                   // rather than trusted across the layer.
                   if (!config.vcpu_count || !config.mem_size_mib)
                       return input_error("vcpu_count and mem_size_mib are required");
                   return vmm.put_machine_config(*config.vcpu_count, *config.mem_size_mib,
                                                 config.smt.value_or(false),
                                                 config.track_dirty_pages.value_or(false),
                                                 config.cpu);
               }));
    router.add(http::verb::patch, "/machine-config",
               command([&vmm](const ApiRequest& request) -> Result<void> {
                   auto body = RV_TRY(json_body(request));
                   auto update = RV_TRY(machine_config_from_json(body, /*partial=*/true));
                   return vmm.patch_machine_config(update);
               }));
}

}  // namespace rv::api
