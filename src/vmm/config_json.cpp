// Firecracker's FullVmConfiguration (--config-file, GET /vm/config) and the
// machine-level bodies: BootSource, MachineConfiguration, Logger, Metrics,
// InstanceActionInfo, Vm. The device bodies are in config_json_devices.cpp.
#include "vmm/config_json.h"

#include "vmm/config_json_reader.h"

namespace rv {

using config_json::Choices;
using config_json::json;
using config_json::ObjectReader;

namespace {

// Firecracker takes the level in any case ("info", "INFO").
constexpr Choices<LoggerConfig::Level, 6> kLogLevels{{
    {"Error", LoggerConfig::Level::Error},
    {"Warning", LoggerConfig::Level::Warning},
    {"Info", LoggerConfig::Level::Info},
    {"Debug", LoggerConfig::Level::Debug},
    {"Trace", LoggerConfig::Level::Trace},
    {"Off", LoggerConfig::Level::Off},
}};
constexpr Choices<VmAction, 3> kActions{{
    {"InstanceStart", VmAction::InstanceStart},
    {"SendCtrlAltDel", VmAction::SendCtrlAltDel},
    {"FlushMetrics", VmAction::FlushMetrics},
}};
constexpr Choices<bool, 2> kVmStates{{{"Paused", true}, {"Resumed", false}}};

// mem_size_mib << 20 must fit in the bytes VmConfig keeps.
constexpr uint64_t kMaxMemMib = UINT64_MAX >> 20;

// Sections of FullVmConfiguration that ringvisor does not implement. They
// are refused by name rather than as unknown fields, so the user learns the
// section is known and unsupported; null (what Firecracker's own GET
// /vm/config writes for an absent device) is accepted, as is an empty list.
constexpr std::string_view kUnsupportedSections[] = {
    "balloon", "vsock", "mmds-config", "cpu-config", "serial", "pmem", "memory-hotplug"};

Result<void> refuse_section(const json& doc, std::string_view name) {
    auto it = doc.find(name);
    if (it == doc.end() || it->is_null() || (it->is_array() && it->empty())) return {};
    return input_error("{}: not supported by ringvisor (leave it out or give null)", name);
}

const json* find_section(const json& doc, std::string_view name) {
    auto it = doc.find(name);
    if (it == doc.end() || it->is_null()) return nullptr;
    return &*it;
}

// A section holding a list ("drives", "network-interfaces"); null is none.
Result<json> list_section(const json& doc, std::string_view name) {
    const json* list = find_section(doc, name);
    if (!list) return json::array();
    if (!list->is_array()) return input_error("{}: expected an array", name);
    return *list;
}

Result<json> parse_text(std::string_view text) {
    try {
        return json::parse(text);
    } catch (const json::parse_error& e) {
        // e.what() starts with "[json.exception.parse_error.101] ": noise to a user.
        std::string_view what = e.what();
        if (auto at = what.find("] "); at != std::string_view::npos) what.remove_prefix(at + 2);
        return input_error("invalid JSON: {}", what);
    }
}

json logger_to_json(const LoggerConfig& logger) {
    return {{"log_path", logger.log_path ? json(*logger.log_path) : json(nullptr)},
            {"level", config_json::choice_name(kLogLevels, logger.level)},
            {"show_level", logger.show_level},
            {"show_log_origin", logger.show_log_origin}};
}

}  // namespace

namespace config_json {

Result<BootSourceConfig> parse_boot_source(const json& value, std::string path) {
    auto in = RV_TRY(ObjectReader::open(value, std::move(path),
                                        {"kernel_image_path", "initrd_path", "boot_args"}));
    BootSourceConfig boot;
    boot.kernel_image_path = RV_TRY(in.string("kernel_image_path"));
    boot.initrd_path = RV_TRY(in.opt_string("initrd_path"));
    boot.boot_args = RV_TRY(in.opt_string("boot_args"));
    return boot;
}

Result<MachineConfigUpdate> parse_machine_config(const json& value, std::string path,
                                                 bool partial) {
    auto in = RV_TRY(ObjectReader::open(
        value, std::move(path),
        {"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template", "huge_pages",
         "cpu_weight", "cpu_max", "cpuset", "io_weight", "io_max"}));
    MachineConfigUpdate update;
    if (partial) {
        if (auto v = RV_TRY(in.opt_uint("vcpu_count", 1, kMaxCpus)))
            update.vcpu_count = unsigned(*v);
        update.mem_size_mib = RV_TRY(in.opt_uint("mem_size_mib", 1, kMaxMemMib));
    } else {
        update.vcpu_count = unsigned(RV_TRY(in.uint("vcpu_count", 1, kMaxCpus)));
        update.mem_size_mib = RV_TRY(in.uint("mem_size_mib", 1, kMaxMemMib));
    }
    update.smt = RV_TRY(in.opt_bool("smt"));
    update.track_dirty_pages = RV_TRY(in.opt_bool("track_dirty_pages"));
    // ringvisor's extensions: how the VM shares the host's CPUs (its cgroup).
    if (auto w = RV_TRY(in.opt_uint("cpu_weight", CpuPolicy::kMinWeight, CpuPolicy::kMaxWeight)))
        update.cpu.weight = uint32_t(*w);
    if (auto m = RV_TRY(in.opt_string("cpu_max")))
        update.cpu.max = RV_TRY(as_input_error(parse_cpu_max(*m), in.path("cpu_max")));
    if (auto c = RV_TRY(in.opt_string("cpuset"))) {
        RV_TRY_VOID(as_input_error(check_cpu_list(*c), in.path("cpuset")));
        update.cpu.cpuset = *c;
    }
    // ... and the host's disk I/O.
    if (auto w = RV_TRY(in.opt_uint("io_weight", CpuPolicy::kMinWeight, CpuPolicy::kMaxWeight)))
        update.cpu.io_weight = uint32_t(*w);
    if (auto m = RV_TRY(in.opt_string("io_max")))
        update.cpu.io_max = RV_TRY(as_input_error(parse_io_max(*m), in.path("io_max")));
    // CPU templates and huge pages change what the guest sees or how memory
    // is backed; ringvisor has neither, so only their "off" value passes.
    for (std::string_view key : {"cpu_template", "huge_pages"}) {
        auto v = RV_TRY(in.opt_string(key));
        if (v && *v != "None")
            return input_error("{}: '{}' is not supported (only \"None\")", in.path(key), *v);
    }
    return update;
}

// Absent fields keep LoggerConfig's defaults (level Warning: ringvisor's
// usual level; Firecracker's is Info).
Result<LoggerConfig> parse_logger(const json& value, std::string path) {
    auto in = RV_TRY(ObjectReader::open(
        value, std::move(path), {"log_path", "level", "show_level", "show_log_origin", "module"}));
    RV_TRY_VOID(in.refuse("module", "filtering the log by module is not supported"));
    LoggerConfig logger;
    logger.log_path = RV_TRY(in.opt_string("log_path"));
    logger.level = RV_TRY(in.opt_choice("level", kLogLevels, true)).value_or(logger.level);
    logger.show_level = RV_TRY(in.opt_bool("show_level")).value_or(false);
    logger.show_log_origin = RV_TRY(in.opt_bool("show_log_origin")).value_or(false);
    return logger;
}

Result<MetricsConfig> parse_metrics(const json& value, std::string path) {
    auto in = RV_TRY(
        ObjectReader::open(value, std::move(path), {"metrics_path", "emit_id", "properties"}));
    if (RV_TRY(in.opt_bool("emit_id")).value_or(false))
        return input_error("{}: true is not supported", in.path("emit_id"));
    if (const json* p = in.find("properties"); p && !(p->is_object() && p->empty()))
        return input_error("{}: not supported", in.path("properties"));
    MetricsConfig metrics;
    metrics.metrics_path = RV_TRY(in.string("metrics_path"));
    return metrics;
}

}  // namespace config_json

Result<BootSourceConfig> boot_source_from_json(const json& body) {
    return config_json::parse_boot_source(body, "");
}

Result<MachineConfigUpdate> machine_config_from_json(const json& body, bool partial) {
    return config_json::parse_machine_config(body, "", partial);
}

json machine_config_to_json(const VmConfig& config) {
    json j = {{"vcpu_count", config.cpus},
              {"mem_size_mib", config.memory_bytes >> 20},
              {"smt", config.smt},
              {"track_dirty_pages", config.track_dirty_pages},
              {"huge_pages", "None"}};
    const CpuPolicy& cpu = config.cpu_policy;
    if (cpu.weight) j["cpu_weight"] = *cpu.weight;
    if (cpu.max) j["cpu_max"] = format_cpu_max(*cpu.max);
    if (cpu.cpuset) j["cpuset"] = *cpu.cpuset;
    if (cpu.io_weight) j["io_weight"] = *cpu.io_weight;
    if (cpu.io_max) j["io_max"] = format_io_max(*cpu.io_max);
    return j;
}

Result<LoggerConfig> logger_from_json(const json& body) {
    return config_json::parse_logger(body, "");
}

Result<MetricsConfig> metrics_from_json(const json& body) {
    return config_json::parse_metrics(body, "");
}

Result<VmAction> action_from_json(const json& body) {
    auto in = RV_TRY(ObjectReader::open(body, "", {"action_type"}));
    auto action = RV_TRY(in.opt_choice("action_type", kActions));
    if (!action) return input_error("action_type: missing (required)");
    return *action;
}

Result<bool> vm_state_from_json(const json& body) {
    auto in = RV_TRY(ObjectReader::open(body, "", {"state"}));
    auto paused = RV_TRY(in.opt_choice("state", kVmStates));
    if (!paused) return input_error("state: missing (required)");
    return *paused;
}

std::string_view state_name(VmState state) {
    switch (state) {
        case VmState::NotStarted:
            return "Not started";
        case VmState::Running:
            return "Running";
        case VmState::Paused:
            return "Paused";
    }
    return "Not started";
}

Result<VmConfig> config_from_json(std::string_view text) {
    auto doc = RV_TRY(parse_text(text));
    auto top = RV_TRY(
        ObjectReader::open(doc, "",
                           {"boot-source", "drives", "machine-config", "network-interfaces",
                            "entropy", "logger", "metrics", "rate-limit-groups", "balloon",
                            "vsock", "mmds-config", "cpu-config", "serial", "pmem",
                            "memory-hotplug"}));
    for (auto name : kUnsupportedSections) RV_TRY_VOID(refuse_section(doc, name));

    VmConfig config;
    const json* boot_json = top.find("boot-source");
    if (!boot_json) return input_error("boot-source: missing (required)");
    auto boot = RV_TRY(config_json::parse_boot_source(*boot_json, "boot-source"));
    config.kernel_path = std::move(boot.kernel_image_path);
    config.initrd_path = std::move(boot.initrd_path);
    // Without boot_args the command line stays VmConfig's "console=ttyS0",
    // not Firecracker's default (which adds pci=off among others: wrong for
    // a machine whose virtio devices sit on PCI).
    if (boot.boot_args) config.cmdline = std::move(*boot.boot_args);

    if (const json* machine = top.find("machine-config")) {
        auto m = RV_TRY(config_json::parse_machine_config(*machine, "machine-config", false));
        config.cpus = *m.vcpu_count;
        config.memory_bytes = *m.mem_size_mib << 20;
        config.smt = m.smt.value_or(false);
        config.track_dirty_pages = m.track_dirty_pages.value_or(false);
        config.cpu_policy = m.cpu;
    }
    auto groups = RV_TRY(list_section(doc, "rate-limit-groups"));
    for (size_t i = 0; i < groups.size(); ++i)
        config.rate_limit_groups.push_back(RV_TRY(config_json::parse_rate_limit_group(
            groups[i], config_json::index_path("rate-limit-groups", i))));
    auto drives = RV_TRY(list_section(doc, "drives"));
    for (size_t i = 0; i < drives.size(); ++i)
        config.disks.push_back(
            RV_TRY(config_json::parse_drive(drives[i], config_json::index_path("drives", i))));
    auto nets = RV_TRY(list_section(doc, "network-interfaces"));
    for (size_t i = 0; i < nets.size(); ++i)
        config.nets.push_back(RV_TRY(
            config_json::parse_net(nets[i], config_json::index_path("network-interfaces", i))));
    if (const json* e = find_section(doc, "entropy"))
        config.entropy = RV_TRY(config_json::parse_entropy(*e, "entropy"));
    if (const json* l = find_section(doc, "logger"))
        config.logger = RV_TRY(config_json::parse_logger(*l, "logger"));
    if (const json* m = find_section(doc, "metrics"))
        config.metrics = RV_TRY(config_json::parse_metrics(*m, "metrics"));
    config.resolve_defaults();
    return config;
}

json config_to_json(const VmConfig& config) {
    json doc;
    doc["boot-source"] = {
        {"kernel_image_path", config.kernel_path},
        {"initrd_path", config.initrd_path ? json(*config.initrd_path) : json(nullptr)},
        {"boot_args", config.cmdline}};
    doc["machine-config"] = machine_config_to_json(config);
    doc["drives"] = json::array();
    for (const auto& d : config.disks) doc["drives"].push_back(config_json::drive_to_json(d));
    // ringvisor's extension; left out when empty, so Firecracker's tools see
    // only the sections they know.
    for (const auto& g : config.rate_limit_groups)
        doc["rate-limit-groups"].push_back(rate_limit_group_to_json(g));
    doc["network-interfaces"] = json::array();
    for (const auto& n : config.nets)
        doc["network-interfaces"].push_back(config_json::net_to_json(n));
    doc["entropy"] = config.entropy ? config_json::entropy_to_json(*config.entropy) : json(nullptr);
    doc["logger"] = config.logger ? logger_to_json(*config.logger) : json(nullptr);
    doc["metrics"] =
        config.metrics ? json{{"metrics_path", config.metrics->metrics_path}} : json(nullptr);
    // As Firecracker writes them, so its clients find every section they know.
    for (auto name : {"balloon", "vsock", "mmds-config", "cpu-config"}) doc[name] = nullptr;
    return doc;
}

}  // namespace rv
