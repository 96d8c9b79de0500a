#include "vmm/vm_snapshot_config.h"

#include <nlohmann/json.hpp>

#include "vmm/config_json.h"

namespace rv {

std::vector<uint8_t> encode_snapshot_config(const VmConfig& config) {
    nlohmann::json doc = config_to_json(config);
    // What shapes the machine beyond Firecracker's document.
    doc["ringvisor"] = {{"console", config.console == ConsoleKind::Virtio ? "virtio" : "serial"}};
    std::string text = doc.dump();
    return std::vector<uint8_t>(text.begin(), text.end());
}

Result<VmConfig> snapshot_config(const snapshot::SnapshotFile& file, const VmConfig& process,
                                 const SnapshotOverrides& overrides, unsigned max_cpus) {
    const snapshot::Section* s = file.find("config");
    if (!s) return input_error("the snapshot has no 'config' section");
    if (s->version != kSnapshotConfigVersion)
        return input_error("'config': version {}, this ringvisor reads version {}", s->version,
                           kSnapshotConfigVersion);
    std::string text(s->data.begin(), s->data.end());
    auto doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        return input_error("the snapshot's config is not a JSON object");
    std::string console = "serial";
    if (auto it = doc.find("ringvisor"); it != doc.end()) {
        if (it->is_object() && it->contains("console") && (*it)["console"].is_string())
            console = (*it)["console"].get<std::string>();
        doc.erase(it);
    }
    if (console != "serial" && console != "virtio")
        return input_error("the snapshot's config: console '{}'", console);
    auto saved = RV_TRY(with_context(config_from_json(doc.dump()), "the snapshot's config"));

    VmConfig config = process;  // the process's own settings
    config.kernel_path = saved.kernel_path;
    config.initrd_path = saved.initrd_path;
    config.cmdline = saved.cmdline;
    config.memory_bytes = saved.memory_bytes;
    config.cpus = saved.cpus;
    config.smt = saved.smt;
    config.track_dirty_pages = saved.track_dirty_pages;
    config.cpu_policy = saved.cpu_policy;
    config.disks = saved.disks;
    config.rate_limit_groups = saved.rate_limit_groups;
    config.nets = saved.nets;
    config.entropy = saved.entropy;
    config.console = console == "virtio" ? ConsoleKind::Virtio : ConsoleKind::Serial;
    for (const auto& [id, tap] : overrides.taps) {
        auto it = std::find_if(config.nets.begin(), config.nets.end(),
                               [&](const NetConfig& n) { return n.id == id; });
        if (it == config.nets.end())
            return input_error("network override: the snapshot has no network interface '{}'", id);
        it->tap = tap;
    }
    for (const auto& [id, path] : overrides.drive_paths) {
        auto it = std::find_if(config.disks.begin(), config.disks.end(),
                               [&](const DiskConfig& d) { return d.id == id; });
        if (it == config.disks.end())
            return input_error("drive override: the snapshot has no drive '{}'", id);
        it->path = path;
    }
    RV_TRY_VOID(config.validate(max_cpus));
    return config;
}

}  // namespace rv
