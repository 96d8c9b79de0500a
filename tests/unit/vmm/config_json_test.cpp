// The --config-file document and the machine-level API bodies (BootSource,
// MachineConfiguration, Logger, Metrics, InstanceActionInfo, Vm).
#include "vmm/config_json.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "unit/vmm/config_json_test_support.h"

namespace rv {
namespace {

using nlohmann::json;
using testing_support::InputError;

std::string read_spec_file(const std::string& name) {
    std::string path = std::string(RV_FIRECRACKER_SPEC_DIR) + "/" + name;
    std::ifstream in(path);
    EXPECT_TRUE(in) << "cannot open " << path << " (set RV_FIRECRACKER_SPEC_DIR)";
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// A minimal valid document with `extra` merged in at the top level.
std::string document(const json& extra = json::object()) {
    json doc = {{"boot-source", {{"kernel_image_path", "/k"}}}};
    doc.update(extra);
    return doc.dump();
}

RateLimiterConfig limiter(uint64_t bytes, uint64_t ops) {
    return {TokenBucketConfig{bytes, bytes / 2, 100}, TokenBucketConfig{ops, 0, 1000}};
}

// Every kind of device and limiter, resolved as config_from_json returns it.
VmConfig full_config() {
    VmConfig c;
    c.kernel_path = "/k/vmlinux";
    c.initrd_path = "/k/initrd.img";
    c.cmdline = "console=ttyS0 root=/dev/vda ro";
    c.memory_bytes = 2048ull << 20;
    c.cpus = 4;
    c.track_dirty_pages = true;
    c.cpu_policy = CpuPolicy{.weight = 200, .io_weight = 300,
                             .io_max = CpuPolicy::IoMax{.rbps = 1 << 20, .wiops = 50}};
    c.disks.push_back({.id = "rootfs",
                       .path = "/img/root.ext4",
                       .read_only = true,
                       .is_root_device = true,
                       .cache = DiskConfig::Cache::Unsafe,
                       .engine = BlockOptions::Engine::Sync,
                       .rate_limiter = limiter(1 << 20, 100)});
    c.disks.push_back({.path = "/img/ide.raw", .iface = DiskConfig::Interface::Ide});
    c.disks.push_back(
        {.id = "scratch",
         .path = "/img/s.raw",
         .cache = DiskConfig::Cache::None,
         .rate_limiter = RateLimiterConfig{std::nullopt, TokenBucketConfig{50, 5, 10}},
         .rate_limit_group = "tenant_a"});
    c.rate_limit_groups.push_back({"tenant_a", limiter(4 << 20, 1000)});
    c.disks.push_back(
        {.id = "empty_limiter", .path = "/img/e.raw", .rate_limiter = RateLimiterConfig{}});
    c.nets.push_back({.id = "eth0",
                      .tap = "tap0",
                      .mac = MacAddress{0x06, 0, 0xc0, 0xa8, 0, 2},
                      .queues = 2,
                      .rx_rate_limiter = limiter(10000, 10)});
    c.nets.push_back(
        {.tap = "tap1", .model = NetConfig::Model::E1000, .tx_rate_limiter = limiter(20000, 20)});
    c.entropy = EntropyConfig{RateLimiterConfig{TokenBucketConfig{4096, 0, 1000}, std::nullopt}};
    c.logger = LoggerConfig{.log_path = "/tmp/rv.log",
                            .level = LoggerConfig::Level::Debug,
                            .show_level = true,
                            .show_log_origin = true};
    c.metrics = MetricsConfig{"/tmp/rv.metrics"};
    c.resolve_defaults();
    return c;
}

TEST(ConfigJson, LoadsFirecrackerExample) {
    auto c = config_from_json(read_spec_file("vm_config.json"));
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->kernel_path, "vmlinux.bin");
    EXPECT_FALSE(c->initrd_path);
    EXPECT_EQ(c->cmdline, "console=ttyS0 reboot=k panic=1");
    EXPECT_EQ(c->cpus, 2u);
    EXPECT_EQ(c->memory_bytes, 1024ull << 20);
    EXPECT_FALSE(c->smt);
    ASSERT_EQ(c->disks.size(), 1u);
    const auto& d = c->disks[0];
    EXPECT_EQ(d.id, "rootfs");
    EXPECT_EQ(d.path, "bionic.rootfs.ext4");
    EXPECT_TRUE(d.is_root_device);
    EXPECT_FALSE(d.read_only);
    EXPECT_EQ(d.cache, DiskConfig::Cache::Unsafe);
    EXPECT_EQ(d.engine, BlockOptions::Engine::Sync);
    EXPECT_EQ(d.iface, DiskConfig::Interface::Virtio);
    EXPECT_FALSE(d.rate_limiter);
    EXPECT_EQ(d.serial, "ringvisor-rootfs");  // resolved
    EXPECT_TRUE(c->nets.empty());
    EXPECT_FALSE(c->entropy);
    EXPECT_FALSE(c->logger);
    EXPECT_FALSE(c->metrics);
    EXPECT_TRUE(c->validate(kMaxCpus));
}

TEST(ConfigJson, LoadsFirecrackerNetworkExample) {
    auto c = config_from_json(read_spec_file("vm_config_network.json"));
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_EQ(c->nets.size(), 1u);
    EXPECT_EQ(c->nets[0].id, "eth0");
    EXPECT_EQ(c->nets[0].tap, "tap0");
    EXPECT_EQ(c->nets[0].mac, (MacAddress{0x06, 0x00, 0xc0, 0xa8, 0x00, 0x02}));
    EXPECT_EQ(c->nets[0].model, NetConfig::Model::Virtio);
    EXPECT_TRUE(c->validate(kMaxCpus));
    // What GET /vm/config would return builds the same VM again.
    auto back = config_from_json(config_to_json(*c).dump());
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(*back, *c);
}

TEST(ConfigJson, RoundTripsEveryDeviceAndLimiter) {
    VmConfig c = full_config();
    ASSERT_TRUE(c.validate(kMaxCpus)) << c.validate(kMaxCpus).error().message();
    json doc = config_to_json(c);
    auto back = config_from_json(doc.dump(2));
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(*back, c);
    EXPECT_EQ(config_to_json(*back), doc);
}

TEST(ConfigJson, OutputHasFirecrackersShape) {
    json doc = config_to_json(full_config());
    EXPECT_EQ(doc["boot-source"]["kernel_image_path"], "/k/vmlinux");
    EXPECT_EQ(doc["machine-config"]["mem_size_mib"], 2048);
    EXPECT_EQ(doc["machine-config"]["vcpu_count"], 4);
    EXPECT_EQ(doc["drives"][0]["drive_id"], "rootfs");
    EXPECT_EQ(doc["drives"][0]["cache_type"], "Unsafe");
    EXPECT_EQ(doc["drives"][0]["io_engine"], "Sync");
    EXPECT_EQ(doc["drives"][0]["rate_limiter"]["bandwidth"]["refill_time"], 100);
    EXPECT_EQ(doc["drives"][1]["drive_id"], "drive0");
    EXPECT_EQ(doc["drives"][1]["iface"], "ide");
    EXPECT_EQ(doc["network-interfaces"][0]["guest_mac"], "06:00:c0:a8:00:02");
    EXPECT_EQ(doc["network-interfaces"][1]["iface_id"], "net0");
    EXPECT_EQ(doc["network-interfaces"][1]["model"], "e1000");
    EXPECT_EQ(doc["network-interfaces"][0]["queues"], 2);
    EXPECT_TRUE(doc["network-interfaces"][1]["queues"].is_null()) << "left out: one per vCPU";
    EXPECT_EQ(doc["logger"]["level"], "Debug");
    EXPECT_EQ(doc["metrics"]["metrics_path"], "/tmp/rv.metrics");
    EXPECT_TRUE(doc["balloon"].is_null());
    EXPECT_TRUE(config_to_json(VmConfig{})["entropy"].is_null());
    // ringvisor's extensions.
    EXPECT_EQ(doc["machine-config"]["io_weight"], 300);
    EXPECT_EQ(doc["machine-config"]["io_max"], "rbps=1048576,wiops=50");
    EXPECT_EQ(doc["drives"][2]["rate_limit_group"], "tenant_a");
    EXPECT_TRUE(doc["drives"][0]["rate_limit_group"].is_null());
    EXPECT_EQ(doc["rate-limit-groups"][0]["id"], "tenant_a");
    EXPECT_EQ(doc["rate-limit-groups"][0]["rate_limiter"]["bandwidth"]["size"], 4 << 20);
    EXPECT_FALSE(config_to_json(VmConfig{}).contains("rate-limit-groups"));  // only when there are some
}

TEST(ConfigJson, RateLimitGroupsSection) {
    const json group = {{"id", "g"}, {"rate_limiter", {{"ops", {{"size", 10}, {"refill_time", 100}}}}}};
    auto c = config_from_json(document(
        {{"rate-limit-groups", {group}},
         {"drives", {{{"drive_id", "d"}, {"path_on_host", "/x"}, {"rate_limit_group", "g"}}}}}));
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_EQ(c->rate_limit_groups.size(), 1u);
    EXPECT_EQ(c->rate_limit_groups[0].limits.ops->size, 10u);
    EXPECT_EQ(c->disks[0].rate_limit_group, "g");
    EXPECT_TRUE(c->validate(kMaxCpus));
    EXPECT_TRUE(config_from_json(document({{"rate-limit-groups", nullptr}})));
    EXPECT_TRUE(InputError(config_from_json(document({{"rate-limit-groups", group}})),
                           "rate-limit-groups: expected an array"));
    EXPECT_TRUE(InputError(config_from_json(document({{"rate-limit-groups", {{{"id", "g"}}}}})),
                           "rate-limit-groups[0].rate_limiter: missing"));
    // A drive naming a group nobody defined: validate's.
    auto orphan = config_from_json(document(
        {{"drives", {{{"drive_id", "d"}, {"path_on_host", "/x"}, {"rate_limit_group", "nope"}}}}}));
    ASSERT_TRUE(orphan);
    EXPECT_TRUE(InputError(orphan->validate(kMaxCpus),
                           "drives[0].rate_limit_group: no rate limit group 'nope' is defined"));
}

TEST(ConfigJson, AbsentFieldsKeepVmConfigDefaults) {
    auto c =
        config_from_json(document({{"drives", {{{"drive_id", "d"}, {"path_on_host", "/x"}}}}}));
    ASSERT_TRUE(c) << c.error().message();
    VmConfig defaults;
    EXPECT_EQ(c->cmdline, defaults.cmdline);  // "console=ttyS0", not Firecracker's
    EXPECT_EQ(c->cpus, defaults.cpus);
    EXPECT_EQ(c->memory_bytes, defaults.memory_bytes);
    EXPECT_EQ(c->disks[0].cache, DiskConfig::Cache::Writeback);
    EXPECT_EQ(c->disks[0].engine, BlockOptions::Engine::IoUring);
    EXPECT_FALSE(c->disks[0].is_root_device);
}

TEST(ConfigJson, NamedErrorsForTheFieldPath) {
    json drives = json::array(
        {{{"drive_id", "a"}, {"path_on_host", "/a"}}, {{"drive_id", "b"}, {"path_on_host", 7}}});
    EXPECT_TRUE(InputError(config_from_json(document({{"drives", drives}})),
                           "drives[1].path_on_host: expected a string"));
    EXPECT_TRUE(InputError(config_from_json(document(
                               {{"machine-config", {{"vcpu_count", 0}, {"mem_size_mib", 128}}}})),
                           "machine-config.vcpu_count: 0 is out of range 1..254"));
    json unknown = json::array({{{"drive_id", "a"}, {"path_on_host", "/a"}, {"foo", 1}}});
    EXPECT_TRUE(InputError(config_from_json(document({{"drives", unknown}})),
                           "unknown field 'foo' in drives[0]"));
    EXPECT_TRUE(
        InputError(config_from_json(document({{"network-interfaces", {{{"iface_id", "n"}}}}})),
                   "network-interfaces[0].host_dev_name: missing"));
    EXPECT_TRUE(InputError(config_from_json(document({{"logger", {{"level", "Loud"}}}})),
                           "logger.level: 'Loud' is not one of"));
    EXPECT_TRUE(InputError(config_from_json(document({{"metrics", json::object()}})),
                           "metrics.metrics_path: missing"));
    EXPECT_TRUE(InputError(config_from_json(document({{"entropy", {{"rate_limiter", 5}}}})),
                           "entropy.rate_limiter: expected an object"));
}

TEST(ConfigJson, RefusesBadDocuments) {
    EXPECT_TRUE(InputError(config_from_json("{"), "invalid JSON"));
    EXPECT_TRUE(InputError(config_from_json("[]"), "expected a JSON object"));
    EXPECT_TRUE(InputError(config_from_json("{}"), "boot-source: missing"));
    EXPECT_TRUE(InputError(config_from_json(document({{"frobnicator", 1}})),
                           "unknown field 'frobnicator'"));
    EXPECT_TRUE(InputError(config_from_json(document({{"drives", {{"drive_id", "a"}}}})),
                           "drives: expected an array"));
    EXPECT_TRUE(InputError(config_from_json(document({{"drives", json::array({1})}})),
                           "drives[0]: expected an object"));
    EXPECT_TRUE(InputError(config_from_json(json{{"boot-source", nullptr}}.dump()),
                           "boot-source: missing"));
}

TEST(ConfigJson, RefusesUnsupportedSectionsByName) {
    for (const char* name :
         {"balloon", "vsock", "mmds-config", "cpu-config", "serial", "memory-hotplug"}) {
        EXPECT_TRUE(config_from_json(document({{name, nullptr}}))) << name;
        EXPECT_TRUE(InputError(config_from_json(document({{name, {{"x", 1}}}})),
                               std::string(name) + ": not supported"));
    }
    EXPECT_TRUE(config_from_json(document({{"pmem", json::array()}})));
    EXPECT_TRUE(InputError(config_from_json(document({{"pmem", json::array({{{"id", "p"}}})}})),
                           "pmem: not supported"));
}

TEST(ConfigJson, NullListsAndSectionsAreEmpty) {
    auto c = config_from_json(document({{"drives", nullptr},
                                        {"network-interfaces", nullptr},
                                        {"logger", nullptr},
                                        {"entropy", json::object()}}));
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_TRUE(c->disks.empty());
    EXPECT_FALSE(c->logger);
    ASSERT_TRUE(c->entropy);  // {} is a device without a limiter
    EXPECT_FALSE(c->entropy->rate_limiter);
}

TEST(BootSourceJson, GoodAndBad) {
    auto b = boot_source_from_json(
        {{"kernel_image_path", "/k"}, {"initrd_path", "/i"}, {"boot_args", "quiet"}});
    ASSERT_TRUE(b);
    EXPECT_EQ(b->kernel_image_path, "/k");
    EXPECT_EQ(b->initrd_path, "/i");
    EXPECT_EQ(b->boot_args, "quiet");
    auto minimal = boot_source_from_json({{"kernel_image_path", "/k"}, {"initrd_path", nullptr}});
    ASSERT_TRUE(minimal);
    EXPECT_FALSE(minimal->initrd_path);
    EXPECT_FALSE(minimal->boot_args);
    EXPECT_TRUE(InputError(boot_source_from_json(json::object()), "kernel_image_path: missing"));
    EXPECT_TRUE(InputError(boot_source_from_json({{"kernel_image_path", nullptr}}),
                           "kernel_image_path: expected a string, got null"));
    EXPECT_TRUE(InputError(boot_source_from_json({{"kernel_image_path", "/k"}, {"boot_args", 1}}),
                           "boot_args: expected a string"));
    EXPECT_TRUE(InputError(boot_source_from_json({{"kernel_image_path", "/k"}, {"x", 1}}),
                           "unknown field 'x'"));
    EXPECT_TRUE(InputError(boot_source_from_json("/k"), "expected a JSON object"));
}

TEST(MachineConfigJson, PutNeedsVcpusAndMemory) {
    auto m = machine_config_from_json({{"vcpu_count", 2},
                                       {"mem_size_mib", 1024},
                                       {"smt", false},
                                       {"track_dirty_pages", true},
                                       {"cpu_template", "None"},
                                       {"huge_pages", "None"}},
                                      false);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->vcpu_count, 2u);
    EXPECT_EQ(m->mem_size_mib, 1024u);
    EXPECT_EQ(m->smt, false);
    EXPECT_EQ(m->track_dirty_pages, true);
    EXPECT_TRUE(
        InputError(machine_config_from_json({{"vcpu_count", 2}}, false), "mem_size_mib: missing"));
    EXPECT_TRUE(
        InputError(machine_config_from_json({{"mem_size_mib", 2}}, false), "vcpu_count: missing"));
}

TEST(MachineConfigJson, PatchTakesWhatIsGiven) {
    auto m = machine_config_from_json({{"mem_size_mib", 256}}, true);
    ASSERT_TRUE(m);
    EXPECT_FALSE(m->vcpu_count);
    EXPECT_EQ(m->mem_size_mib, 256u);
    EXPECT_FALSE(m->smt);
    EXPECT_TRUE(machine_config_from_json(json::object(), true));
}

TEST(MachineConfigJson, RefusesBadValues) {
    auto put = [](json extra) {
        json body = {{"vcpu_count", 1}, {"mem_size_mib", 128}};
        body.update(extra);
        return machine_config_from_json(body, false);
    };
    EXPECT_TRUE(InputError(put({{"vcpu_count", 255}}), "vcpu_count: 255 is out of range 1..254"));
    EXPECT_TRUE(InputError(put({{"vcpu_count", -1}}), "vcpu_count: -1 is out of range"));
    EXPECT_TRUE(InputError(put({{"vcpu_count", 1.5}}), "vcpu_count: expected an integer"));
    EXPECT_TRUE(InputError(put({{"vcpu_count", "2"}}), "vcpu_count: expected an integer"));
    EXPECT_TRUE(InputError(put({{"mem_size_mib", 0}}), "mem_size_mib: 0 is out of range"));
    EXPECT_TRUE(InputError(put({{"mem_size_mib", UINT64_MAX}}), "mem_size_mib"));
    EXPECT_TRUE(InputError(put({{"smt", "no"}}), "smt: expected a boolean"));
    EXPECT_TRUE(InputError(put({{"cpu_template", "T2"}}),
                           "cpu_template: 'T2' is not supported (only \"None\")"));
    EXPECT_TRUE(InputError(put({{"huge_pages", "2M"}}), "huge_pages: '2M' is not supported"));
    EXPECT_TRUE(InputError(put({{"gdb_socket_path", "/s"}}), "unknown field 'gdb_socket_path'"));
}

TEST(MachineConfigJson, ToJson) {
    VmConfig c;
    c.cpus = 3;
    c.memory_bytes = 768ull << 20;
    c.track_dirty_pages = true;
    json m = machine_config_to_json(c);
    EXPECT_EQ(m, (json{{"vcpu_count", 3},
                       {"mem_size_mib", 768},
                       {"smt", false},
                       {"track_dirty_pages", true},
                       {"huge_pages", "None"}}));
    auto back = machine_config_from_json(m, false);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->vcpu_count, 3u);
}

TEST(LoggerJson, GoodAndBad) {
    auto l = logger_from_json({{"log_path", "/tmp/l"},
                               {"level", "debug"},
                               {"show_level", true},
                               {"show_log_origin", false}});
    ASSERT_TRUE(l) << l.error().message();
    EXPECT_EQ(l->log_path, "/tmp/l");
    EXPECT_EQ(l->level, LoggerConfig::Level::Debug);  // case-insensitive, as Firecracker
    EXPECT_TRUE(l->show_level);
    EXPECT_EQ(logger_from_json({{"level", "WARNING"}})->level, LoggerConfig::Level::Warning);
    EXPECT_EQ(logger_from_json({{"level", "Off"}})->level, LoggerConfig::Level::Off);
    EXPECT_EQ(logger_from_json(json::object())->level, LoggerConfig{}.level);
    EXPECT_FALSE(logger_from_json(json::object())->log_path);
    EXPECT_TRUE(InputError(logger_from_json({{"module", "api_server"}}), "module: filtering"));
    EXPECT_TRUE(logger_from_json({{"module", nullptr}}));
    EXPECT_TRUE(
        InputError(logger_from_json({{"level", "Verbose"}}),
                   "level: 'Verbose' is not one of Error, Warning, Info, Debug, Trace, Off"));
    EXPECT_TRUE(
        InputError(logger_from_json({{"show_level", 1}}), "show_level: expected a boolean"));
    EXPECT_TRUE(InputError(logger_from_json({{"colour", true}}), "unknown field 'colour'"));
}

TEST(MetricsJson, GoodAndBad) {
    auto m = metrics_from_json({{"metrics_path", "/tmp/m"}, {"emit_id", false}});
    ASSERT_TRUE(m);
    EXPECT_EQ(m->metrics_path, "/tmp/m");
    EXPECT_TRUE(InputError(metrics_from_json(json::object()), "metrics_path: missing"));
    EXPECT_TRUE(InputError(metrics_from_json({{"metrics_path", "/m"}, {"emit_id", true}}),
                           "emit_id: true is not supported"));
    EXPECT_TRUE(
        InputError(metrics_from_json({{"metrics_path", "/m"}, {"properties", {{"a", "b"}}}}),
                   "properties: not supported"));
    EXPECT_TRUE(
        InputError(metrics_from_json({{"metrics_path", "/m"}, {"x", 1}}), "unknown field 'x'"));
}

TEST(ActionJson, GoodAndBad) {
    EXPECT_EQ(action_from_json({{"action_type", "InstanceStart"}}), VmAction::InstanceStart);
    EXPECT_EQ(action_from_json({{"action_type", "SendCtrlAltDel"}}), VmAction::SendCtrlAltDel);
    EXPECT_EQ(action_from_json({{"action_type", "FlushMetrics"}}), VmAction::FlushMetrics);
    EXPECT_TRUE(InputError(action_from_json({{"action_type", "Reboot"}}),
                           "action_type: 'Reboot' is not one of"));
    EXPECT_TRUE(InputError(action_from_json({{"action_type", "instancestart"}}), "is not one of"));
    EXPECT_TRUE(InputError(action_from_json(json::object()), "action_type: missing"));
    EXPECT_TRUE(InputError(action_from_json({{"action_type", 1}}), "expected a string"));
    EXPECT_TRUE(InputError(action_from_json({{"action_type", "InstanceStart"}, {"payload", 1}}),
                           "unknown field"));
}

TEST(VmStateJson, GoodAndBad) {
    EXPECT_EQ(vm_state_from_json({{"state", "Paused"}}), true);
    EXPECT_EQ(vm_state_from_json({{"state", "Resumed"}}), false);
    EXPECT_TRUE(InputError(vm_state_from_json({{"state", "Running"}}), "state: 'Running'"));
    EXPECT_TRUE(InputError(vm_state_from_json(json::object()), "state: missing"));
    EXPECT_TRUE(InputError(vm_state_from_json({{"state", "Paused"}, {"x", 1}}), "unknown field"));
}

TEST(StateName, FirecrackersNames) {
    EXPECT_EQ(state_name(VmState::NotStarted), "Not started");
    EXPECT_EQ(state_name(VmState::Running), "Running");
    EXPECT_EQ(state_name(VmState::Paused), "Paused");
}

// ringvisor's CPU policy extensions: parsed, refused when bad, written back.
TEST(MachineConfigJson, CpuPolicyExtensions) {
    auto m = machine_config_from_json(
        {{"cpu_weight", 300}, {"cpu_max", "25000/100000"}, {"cpuset", "0-1,3"}}, true);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->cpu.weight, 300u);
    ASSERT_TRUE(m->cpu.max);
    EXPECT_EQ(m->cpu.max->quota_us, 25000u);
    EXPECT_EQ(m->cpu.max->period_us, 100000u);
    EXPECT_EQ(m->cpu.cpuset, "0-1,3");
    EXPECT_TRUE(InputError(machine_config_from_json({{"cpu_weight", 0}}, true),
                           "cpu_weight: 0 is out of range 1..10000"));
    EXPECT_TRUE(InputError(machine_config_from_json({{"cpu_weight", 10001}}, true), "cpu_weight"));
    EXPECT_TRUE(InputError(machine_config_from_json({{"cpu_max", "25000"}}, true),
                           "cpu_max: cpu_max \"25000\": expected QUOTA/PERIOD"));
    EXPECT_TRUE(InputError(machine_config_from_json({{"cpu_max", 25000}}, true),
                           "cpu_max: expected a string"));
    EXPECT_TRUE(InputError(machine_config_from_json({{"cpuset", "3-1"}}, true), "cpuset"));

    VmConfig c;
    c.cpu_policy = m->cpu;
    json j = machine_config_to_json(c);
    EXPECT_EQ(j["cpu_weight"], 300);
    EXPECT_EQ(j["cpu_max"], "25000/100000");
    EXPECT_EQ(j["cpuset"], "0-1,3");
    EXPECT_FALSE(machine_config_to_json(VmConfig{}).contains("cpu_weight"));
}

// ... and the io weight, on the same scale.
TEST(MachineConfigJson, IoWeight) {
    auto m = machine_config_from_json({{"io_weight", 500}}, true);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->cpu.io_weight, 500u);
    EXPECT_FALSE(m->cpu.weight);
    EXPECT_TRUE(InputError(machine_config_from_json({{"io_weight", 0}}, true),
                           "io_weight: 0 is out of range 1..10000"));
    EXPECT_TRUE(InputError(machine_config_from_json({{"io_weight", 10001}}, true), "io_weight"));
    EXPECT_TRUE(InputError(machine_config_from_json({{"io_weight", "500"}}, true), "io_weight"));
    VmConfig c;
    c.cpu_policy = m->cpu;
    EXPECT_EQ(machine_config_to_json(c)["io_weight"], 500);
    EXPECT_FALSE(machine_config_to_json(VmConfig{}).contains("io_weight"));
}

// ... and the io caps, in --io-max's form.
TEST(MachineConfigJson, IoMax) {
    auto m = machine_config_from_json({{"io_max", "riops=200,rbps=4096"}}, true);
    ASSERT_TRUE(m) << m.error().message();
    ASSERT_TRUE(m->cpu.io_max);
    EXPECT_EQ(m->cpu.io_max->riops, 200u);
    EXPECT_EQ(m->cpu.io_max->rbps, 4096u);
    EXPECT_FALSE(m->cpu.io_max->wbps);
    EXPECT_TRUE(InputError(machine_config_from_json({{"io_max", "rbps=0"}}, true), "io_max"));
    EXPECT_TRUE(InputError(machine_config_from_json({{"io_max", "speed=1"}}, true), "speed"));
    EXPECT_TRUE(InputError(machine_config_from_json({{"io_max", 100}}, true), "io_max"));
    VmConfig c;
    c.cpu_policy = m->cpu;
    EXPECT_EQ(machine_config_to_json(c)["io_max"], "rbps=4096,riops=200");
    EXPECT_FALSE(machine_config_to_json(VmConfig{}).contains("io_max"));
}

}  // namespace
}  // namespace rv
