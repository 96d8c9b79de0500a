// ringvisor's configuration in Firecracker's JSON shape, both ways: the
// --config-file document (firecracker.yaml's FullVmConfiguration: boot-source,
// drives, machine-config, network-interfaces, entropy, logger, metrics) and
// the bodies of the API's resources. Parsing is strict: an unknown field, a
// wrong type or a bad value is an ErrorKind::InvalidInput error naming the
// field ("drives[1].path_on_host: expected a string"). ringvisor's own
// extensions are optional fields a Firecracker client never sends: a drive's
// "iface" ("virtio" | "ide") and "rate_limit_group", a NIC's "model"
// ("virtio" | "e1000"), cache_type "None" (O_DIRECT) besides "Unsafe" and
// "Writeback", machine-config's cpu_weight, cpu_max, cpuset, io_weight and io_max,
// and the document's "rate-limit-groups" list ({"id", "rate_limiter"} each,
// also PUT /rate-limit-groups/{id}).
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "base/error.h"
#include "vmm/vm_config.h"
#include "vmm/vmm_api.h"

namespace rv {

// --config-file: the whole document. Sections ringvisor does not implement
// (balloon, vsock, mmds-config, cpu-config, serial, pmem, memory-hotplug)
// are refused by name unless they are null (or, for a list, empty). The
// result has its derived defaults filled (VmConfig::resolve_defaults) but is
// not validated: the caller runs VmConfig::validate with the host's vCPU
// limit. Fields a section leaves out keep VmConfig's defaults, which differ
// from Firecracker's in places (boot_args "console=ttyS0", cache_type
// Writeback, io_engine Async, logger level Warning, 512 MiB without a
// machine-config).
Result<VmConfig> config_from_json(std::string_view text);
// GET /vm/config: what config_from_json reads back into the same VmConfig
// (for a resolved config whose memory is a whole number of MiB, as
// mem_size_mib counts MiB; the process settings outside Firecracker's
// document, console, stats, KVM path, kernel cache and the like, are not in it).
nlohmann::json config_to_json(const VmConfig& config);

// The API's bodies (each takes the parsed JSON of the request body).
Result<BootSourceConfig> boot_source_from_json(const nlohmann::json& body);
// PUT /machine-config: vcpu_count and mem_size_mib required.
Result<MachineConfigUpdate> machine_config_from_json(const nlohmann::json& body, bool partial);
nlohmann::json machine_config_to_json(const VmConfig& config);
// PUT /drives/{id}: drive_id in the body must equal the path's id.
Result<DiskConfig> drive_from_json(std::string_view path_id, const nlohmann::json& body);
Result<DriveUpdate> drive_update_from_json(std::string_view path_id, const nlohmann::json& body);
Result<NetConfig> net_from_json(std::string_view path_id, const nlohmann::json& body);
Result<NetUpdate> net_update_from_json(std::string_view path_id, const nlohmann::json& body);
Result<EntropyConfig> entropy_from_json(const nlohmann::json& body);
Result<LoggerConfig> logger_from_json(const nlohmann::json& body);
Result<MetricsConfig> metrics_from_json(const nlohmann::json& body);
// {"bandwidth": {"size", "one_time_burst", "refill_time"}, "ops": {...}}
Result<RateLimiterConfig> rate_limiter_from_json(const nlohmann::json& body, std::string_view field);
nlohmann::json rate_limiter_to_json(const RateLimiterConfig& limiter);
// PUT /rate-limit-groups/{id}: {"id", "rate_limiter"}; id must equal the path's.
Result<RateLimitGroupConfig> rate_limit_group_from_json(std::string_view path_id,
                                                        const nlohmann::json& body);
nlohmann::json rate_limit_group_to_json(const RateLimitGroupConfig& group);
// PUT /actions: {"action_type": "InstanceStart" | "SendCtrlAltDel" | "FlushMetrics"}
Result<VmAction> action_from_json(const nlohmann::json& body);
// PATCH /vm: {"state": "Paused" | "Resumed"}; true for Paused.
Result<bool> vm_state_from_json(const nlohmann::json& body);

// PUT /snapshot/create: snapshot_path and mem_file_path required,
// snapshot_type Full (default) or Diff.
Result<SnapshotCreateParams> snapshot_create_from_json(const nlohmann::json& body);
// PUT /snapshot/load: snapshot_path and exactly one of mem_backend (File)
// and mem_file_path; Uffd and vsock_override are refused.
Result<SnapshotLoadParams> snapshot_load_from_json(const nlohmann::json& body);

// PUT /migrate (ringvisor's extension): destination required; downtime_ms,
// bandwidth_mib_s, timeout_s, max_iterations optional.
Result<MigrationParams> migration_from_json(const nlohmann::json& body);
nlohmann::json migration_status_to_json(const MigrationStatus& status);

std::string_view state_name(VmState state);  // "Not started", "Running", "Paused"

}  // namespace rv
