// The snapshot API's bodies (Firecracker's SnapshotCreateParams and
// SnapshotLoadParams), read by the same strict reader as the others.
#include <array>

#include <nlohmann/json.hpp>

#include "vmm/config_json.h"
#include "vmm/config_json_reader.h"

namespace rv {

using nlohmann::json;
using config_json::Choices;
using config_json::ObjectReader;

namespace {

constexpr Choices<SnapshotCreateParams::Type, 2> kSnapshotTypes{
    {{"Full", SnapshotCreateParams::Type::Full}, {"Diff", SnapshotCreateParams::Type::Diff}}};

// [{"id_key": ..., "value_key": ...}, ...] into a map; a repeated id is refused.
Result<std::map<std::string, std::string>> overrides(const json* list, std::string path,
                                                     std::string_view id_key,
                                                     std::string_view value_key) {
    std::map<std::string, std::string> out;
    if (!list) return out;
    if (!list->is_array()) return input_error("{}: must be an array", path);
    for (size_t i = 0; i < list->size(); ++i) {
        auto at = fmt::format("{}[{}]", path, i);
        auto item = RV_TRY(ObjectReader::open((*list)[i], at, {id_key, value_key}));
        auto id = RV_TRY(item.string(id_key));
        auto value = RV_TRY(item.string(value_key));
        if (!out.emplace(id, value).second) return input_error("{}: '{}' given twice", at, id);
    }
    return out;
}

}  // namespace

Result<SnapshotCreateParams> snapshot_create_from_json(const json& body) {
    auto in = RV_TRY(ObjectReader::open(body, "", {"snapshot_path", "mem_file_path", "snapshot_type"}));
    SnapshotCreateParams p;
    p.snapshot_path = RV_TRY(in.string("snapshot_path"));
    p.mem_file_path = RV_TRY(in.string("mem_file_path"));
    p.type = RV_TRY(in.opt_choice("snapshot_type", kSnapshotTypes)).value_or(p.type);
    return p;
}

Result<SnapshotLoadParams> snapshot_load_from_json(const json& body) {
    auto in = RV_TRY(ObjectReader::open(
        body, "",
        {"snapshot_path", "mem_file_path", "mem_backend", "enable_diff_snapshots",
         "track_dirty_pages", "resume_vm", "network_overrides", "drive_overrides",
         "vsock_override", "clock_realtime"}));
    SnapshotLoadParams p;
    p.snapshot_path = RV_TRY(in.string("snapshot_path"));
    auto file = RV_TRY(in.opt_string("mem_file_path"));
    const json* backend = in.find("mem_backend");
    if (file && backend) return input_error("mem_file_path and mem_backend: give only one");
    if (!file && !backend) return input_error("mem_backend: missing (or mem_file_path)");
    if (file) {
        p.mem_file_path = *file;
    } else {
        auto b = RV_TRY(ObjectReader::open(*backend, "mem_backend", {"backend_type", "backend_path"}));
        auto type = RV_TRY(b.string("backend_type"));
        if (type != "File")
            return input_error("mem_backend.backend_type: '{}' is not supported (File is)", type);
        p.mem_file_path = RV_TRY(b.string("backend_path"));
    }
    auto diff = RV_TRY(in.opt_bool("enable_diff_snapshots"));
    p.track_dirty_pages = RV_TRY(in.opt_bool("track_dirty_pages")).value_or(diff.value_or(false));
    p.resume_vm = RV_TRY(in.opt_bool("resume_vm")).value_or(false);
    p.network_overrides = RV_TRY(overrides(in.find("network_overrides"), in.path("network_overrides"),
                                           "iface_id", "host_dev_name"));
    // ringvisor's extension: a clone's own disk images.
    p.drive_overrides = RV_TRY(overrides(in.find("drive_overrides"), in.path("drive_overrides"),
                                         "drive_id", "path_on_host"));
    RV_TRY_VOID(in.refuse("vsock_override", "this VMM has no vsock device"));
    p.clock_realtime = RV_TRY(in.opt_bool("clock_realtime")).value_or(false);
    return p;
}

Result<MigrationParams> migration_from_json(const json& body) {
    auto in = RV_TRY(ObjectReader::open(
        body, "", {"destination", "downtime_ms", "bandwidth_mib_s", "timeout_s", "max_iterations"}));
    MigrationParams p;
    p.destination = RV_TRY(in.string("destination"));
    p.downtime_ms = static_cast<uint32_t>(
        RV_TRY(in.opt_uint("downtime_ms", 1, 600'000)).value_or(p.downtime_ms));
    p.bandwidth_mib_s = RV_TRY(in.opt_uint("bandwidth_mib_s", 0, 1'000'000)).value_or(0);
    p.timeout_s = static_cast<uint32_t>(RV_TRY(in.opt_uint("timeout_s", 0, 86'400)).value_or(0));
    p.max_iterations = static_cast<uint32_t>(
        RV_TRY(in.opt_uint("max_iterations", 1, 1000)).value_or(p.max_iterations));
    return p;
}

json migration_status_to_json(const MigrationStatus& s) {
    static constexpr std::array<const char*, 5> kPhases{"None", "Active", "Completed", "Failed",
                                                        "Cancelled"};
    json out{{"state", kPhases[static_cast<size_t>(s.phase)]},
             {"iteration", s.iteration},
             {"ram_bytes", s.ram_bytes},
             {"bytes_sent", s.bytes_sent},
             {"remaining_bytes", s.remaining_bytes},
             {"dirty_rate_mib_s", s.dirty_rate_mib_s},
             {"bandwidth_mib_s", s.bandwidth_mib_s},
             {"expected_downtime_ms", s.expected_downtime_ms},
             {"downtime_ms", s.downtime_ms},
             {"total_s", s.total_s}};
    if (!s.message.empty()) out["message"] = s.message;
    return out;
}

}  // namespace rv
