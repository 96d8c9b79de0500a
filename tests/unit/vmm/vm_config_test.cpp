// VmConfig::resolve_defaults, VmConfig::validate and the MAC helpers.
#include "vmm/vm_config.h"

#include <gtest/gtest.h>

#include "unit/vmm/config_json_test_support.h"

namespace rv {
namespace {

using testing_support::InputError;

DiskConfig disk(std::string path, std::string id = {},
                DiskConfig::Interface iface = DiskConfig::Interface::Virtio) {
    DiskConfig d;
    d.id = std::move(id);
    d.path = std::move(path);
    d.iface = iface;
    return d;
}

NetConfig net(std::string tap, std::string id = {}) {
    NetConfig n;
    n.id = std::move(id);
    n.tap = std::move(tap);
    return n;
}

VmConfig valid_config() {
    VmConfig c;
    c.kernel_path = "/k";
    c.disks = {disk("/a"), disk("/b", "data")};
    c.nets = {net("tap0"), net("tap1", "uplink")};
    return c;
}

TEST(ResolveDefaults, FillsIdsInOrderSkippingTakenOnes) {
    VmConfig c;
    c.disks = {disk("/a"), disk("/b", "drive0"), disk("/c"), disk("/d", "drive2"), disk("/e")};
    c.nets = {net("t0", "net1"), net("t1"), net("t2")};
    c.resolve_defaults();
    EXPECT_EQ(c.disks[0].id, "drive1");
    EXPECT_EQ(c.disks[1].id, "drive0");
    EXPECT_EQ(c.disks[2].id, "drive3");
    EXPECT_EQ(c.disks[3].id, "drive2");
    EXPECT_EQ(c.disks[4].id, "drive4");
    EXPECT_EQ(c.nets[0].id, "net1");
    EXPECT_EQ(c.nets[1].id, "net0");
    EXPECT_EQ(c.nets[2].id, "net2");
}

TEST(ResolveDefaults, PlainConfigGetsPositionalIds) {
    VmConfig c;
    c.disks = {disk("/a"), disk("/b")};
    c.nets = {net("t0")};
    c.resolve_defaults();
    EXPECT_EQ(c.disks[0].id, "drive0");
    EXPECT_EQ(c.disks[1].id, "drive1");
    EXPECT_EQ(c.nets[0].id, "net0");
}

TEST(ResolveDefaults, Serials) {
    VmConfig c;
    c.disks = {disk("/a", "rootfs"), disk("/b", "", DiskConfig::Interface::Ide),
               disk("/c", "a_very_long_drive_name"), disk("/d", "x", DiskConfig::Interface::Ide),
               disk("/e", "own")};
    c.disks[4].serial = "MY-SERIAL";
    c.resolve_defaults();
    EXPECT_EQ(c.disks[0].serial, "ringvisor-rootfs");
    EXPECT_EQ(c.disks[1].serial, "RV-HD0");
    EXPECT_EQ(c.disks[2].serial, "ringvisor-a_very_lon");  // virtio-blk's 20-byte GET_ID
    EXPECT_EQ(c.disks[2].serial.size(), 20u);
    EXPECT_EQ(c.disks[3].serial, "RV-HD1");
    EXPECT_EQ(c.disks[4].serial, "MY-SERIAL");  // given ones are kept
}

TEST(ResolveDefaults, MacsFromTheTapName) {
    VmConfig c;
    c.nets = {net("tap0"), net("tap1")};
    c.nets[1].mac = MacAddress{0x52, 0x54, 0, 1, 2, 3};
    c.resolve_defaults();
    ASSERT_TRUE(c.nets[0].mac);
    EXPECT_EQ(*c.nets[0].mac, default_mac("tap0"));
    EXPECT_EQ((*c.nets[0].mac)[0], 0x02);  // locally administered, unicast
    EXPECT_EQ((*c.nets[0].mac)[1], 0x72);
    EXPECT_EQ((*c.nets[0].mac)[2], 0x76);
    EXPECT_EQ(c.nets[1].mac, (MacAddress{0x52, 0x54, 0, 1, 2, 3}));
    // The builder's historical formula, so existing guests keep their MAC.
    size_t h = std::hash<std::string>{}("tap0");
    EXPECT_EQ(default_mac("tap0"),
              (MacAddress{0x02, 0x72, 0x76, uint8_t(h >> 16), uint8_t(h >> 8), uint8_t(h)}));
}

TEST(ResolveDefaults, IsStable) {
    VmConfig c = valid_config();
    c.disks.push_back(disk("/i", "", DiskConfig::Interface::Ide));
    c.resolve_defaults();
    VmConfig again = c;
    again.resolve_defaults();
    EXPECT_EQ(again, c);
    EXPECT_TRUE(c.validate(kMaxCpus));
}

TEST(Validate, AcceptsAValidConfigBeforeAndAfterResolving) {
    VmConfig c = valid_config();
    EXPECT_TRUE(c.validate(kMaxCpus));
    c.resolve_defaults();
    EXPECT_TRUE(c.validate(kMaxCpus));
}

TEST(Validate, MachineRules) {
    VmConfig c = valid_config();
    c.kernel_path.clear();
    EXPECT_TRUE(InputError(c.validate(8), "boot-source.kernel_image_path (--kernel): missing"));
    c = valid_config();
    c.cpus = 0;
    // Worded as tests/cli/bad_input.sh expects of the CLI.
    EXPECT_TRUE(
        InputError(c.validate(8), "--cpus 0: must be between 1 and 8 (machine-config.vcpu_count)"));
    c.cpus = 9;
    EXPECT_TRUE(InputError(c.validate(8), "--cpus 9: must be between 1 and 8"));
    c.cpus = 8;
    EXPECT_TRUE(c.validate(8));
    c.smt = true;
    EXPECT_TRUE(InputError(c.validate(8), "machine-config.smt: smt is not supported"));
    c = valid_config();
    c.memory_bytes = kMinMemoryBytes - 4096;
    EXPECT_TRUE(
        InputError(c.validate(8), "machine-config.mem_size_mib (--memory): 31 MiB is too small"));
    c.memory_bytes = kMinMemoryBytes + 512;
    EXPECT_TRUE(InputError(c.validate(8), "not a whole number of 4 KiB pages"));
    c.memory_bytes = kMinMemoryBytes + 4096;
    EXPECT_TRUE(c.validate(8));
}

TEST(Validate, DriveRules) {
    VmConfig c = valid_config();
    c.disks[0].path.clear();
    EXPECT_TRUE(InputError(c.validate(8), "drives[0].path_on_host: empty"));
    c = valid_config();
    c.disks[0].id = "data";
    EXPECT_TRUE(
        InputError(c.validate(8), "drives[1].drive_id: 'data' is already the id of drives[0]"));
    c.disks[0].id = "bad/id";
    EXPECT_TRUE(InputError(c.validate(8), "drives[0].drive_id: 'bad/id' is not a valid id"));
    c.disks[0].id = std::string(65, 'a');
    EXPECT_TRUE(InputError(c.validate(8), "is not a valid id"));
    c = valid_config();
    c.disks[0].is_root_device = true;
    EXPECT_TRUE(c.validate(8));
    c.disks[1].is_root_device = true;
    EXPECT_TRUE(InputError(c.validate(8),
                           "drives[1].is_root_device: drives[0] is already the root device"));
    c = valid_config();
    for (int i = 0; i < 4; ++i) c.disks.push_back(disk("/ide", "", DiskConfig::Interface::Ide));
    EXPECT_TRUE(c.validate(8));
    c.disks.push_back(disk("/ide", "", DiskConfig::Interface::Ide));
    EXPECT_TRUE(
        InputError(c.validate(8), "drives: 5 IDE disks, but the IDE controller has room for 4"));
}

TEST(Validate, NetRules) {
    VmConfig c = valid_config();
    c.nets[0].tap.clear();
    EXPECT_TRUE(InputError(c.validate(8), "network-interfaces[0].host_dev_name: empty"));
    c = valid_config();
    c.nets[1].tap = "tap0";
    EXPECT_TRUE(InputError(c.validate(8),
                           "network-interfaces[1].host_dev_name: TAP 'tap0' is already used by "
                           "network-interfaces[0]"));
    c = valid_config();
    c.nets[0].id = "uplink";
    EXPECT_TRUE(
        InputError(c.validate(8), "network-interfaces[1].iface_id: 'uplink' is already the id"));
    c = valid_config();
    c.nets[0].mac = MacAddress{0x01, 0, 0x5e, 0, 0, 1};
    EXPECT_TRUE(InputError(c.validate(8),
                           "network-interfaces[0].guest_mac: 01:00:5e:00:00:01 is a multicast"));
    c.nets[0].mac = MacAddress{};
    EXPECT_TRUE(InputError(c.validate(8), "network-interfaces[0].guest_mac: 00:00:00:00:00:00"));
}

TEST(NetQueuePairs, OnePerVcpuCappedAt16UnlessGiven) {
    NetConfig n = net("tap0");
    EXPECT_EQ(n.queue_pairs(1), 1u) << "one vCPU: the single-queue device";
    EXPECT_EQ(n.queue_pairs(4), 4u);
    EXPECT_EQ(n.queue_pairs(40), NetConfig::kMaxQueues);
    n.queues = 2;
    EXPECT_EQ(n.queue_pairs(4), 2u) << "given: kept";
    NetConfig e1000 = net("tap1");
    e1000.model = NetConfig::Model::E1000;
    EXPECT_EQ(e1000.queue_pairs(4), 1u) << "the e1000 has one";
    // Not resolved into the config: the vCPU count may change before start.
    VmConfig c = valid_config();
    c.cpus = 4;
    c.resolve_defaults();
    EXPECT_FALSE(c.nets[0].queues);
}

TEST(Validate, NetQueues) {
    VmConfig c = valid_config();
    c.nets[0].queues = 0;
    EXPECT_TRUE(InputError(c.validate(8), "network-interfaces[0].queues: 0 is not from 1 to 16"));
    c.nets[0].queues = 17;
    EXPECT_TRUE(InputError(c.validate(8), "network-interfaces[0].queues: 17 is not from 1 to 16"));
    c.nets[0].queues = 16;
    EXPECT_TRUE(c.validate(8));
    c.nets[1].model = NetConfig::Model::E1000;
    c.nets[1].queues = 2;
    EXPECT_TRUE(InputError(c.validate(8), "network-interfaces[1].queues: 2 queue pairs, but the "
                                          "e1000 model has one"));
    c.nets[1].queues = 1;
    EXPECT_TRUE(c.validate(8));
}

TEST(Validate, RateLimiterBucketsNeedARefillTime) {
    RateLimiterConfig bad{TokenBucketConfig{1000, 0, 0}, std::nullopt};
    RateLimiterConfig bad_ops{std::nullopt, TokenBucketConfig{10, 0, 0}};
    RateLimiterConfig off{TokenBucketConfig{0, 0, 0}, std::nullopt};  // size 0: no limit
    VmConfig c = valid_config();
    c.disks[1].rate_limiter = off;
    EXPECT_TRUE(c.validate(8));
    c.disks[1].rate_limiter = bad;
    EXPECT_TRUE(
        InputError(c.validate(8),
                   "drives[1].rate_limiter.bandwidth.refill_time: must be > 0 when size is > 0"));
    c = valid_config();
    c.nets[0].rx_rate_limiter = bad_ops;
    EXPECT_TRUE(InputError(c.validate(8), "network-interfaces[0].rx_rate_limiter.ops.refill_time"));
    c = valid_config();
    c.nets[1].tx_rate_limiter = bad;
    EXPECT_TRUE(InputError(c.validate(8), "network-interfaces[1].tx_rate_limiter.bandwidth"));
    c = valid_config();
    c.entropy = EntropyConfig{bad_ops};
    EXPECT_TRUE(InputError(c.validate(8), "entropy.rate_limiter.ops.refill_time"));
}

// Groups have ids (they name files shared between VMs), limit something,
// and drives name only defined ones.
TEST(Validate, RateLimitGroups) {
    const RateLimiterConfig limits{TokenBucketConfig{1 << 20, 0, 100}, std::nullopt};
    VmConfig c = valid_config();
    c.rate_limit_groups = {{"tenant_a", limits}, {"tenant_b", limits}};
    c.disks[0].rate_limit_group = "tenant_a";
    c.disks[1].rate_limit_group = "tenant_a";
    EXPECT_TRUE(c.validate(8));
    ASSERT_NE(c.find_rate_limit_group("tenant_b"), nullptr);
    EXPECT_EQ(c.find_rate_limit_group("tenant_c"), nullptr);
    c.disks[1].rate_limit_group = "tenant_c";
    EXPECT_TRUE(InputError(c.validate(8),
                           "drives[1].rate_limit_group: no rate limit group 'tenant_c' is defined"));
    c.disks[1].rate_limit_group.reset();
    c.rate_limit_groups[1].id = "tenant_a";
    EXPECT_TRUE(InputError(c.validate(8),
                           "rate-limit-groups[1].id: 'tenant_a' is already the id of rate-limit-groups[0]"));
    c.rate_limit_groups[1].id = "";
    EXPECT_TRUE(InputError(c.validate(8), "rate-limit-groups[1].id: empty"));
    c.rate_limit_groups[1].id = "../x";
    EXPECT_TRUE(InputError(c.validate(8), "is not a valid id"));
    c.rate_limit_groups[1] = {"tenant_b", RateLimiterConfig{TokenBucketConfig{0, 0, 0}, std::nullopt}};
    EXPECT_TRUE(InputError(c.validate(8), "rate-limit-groups[1].rate_limiter: limits nothing"));
    c.rate_limit_groups[1] = {"tenant_b", RateLimiterConfig{std::nullopt, TokenBucketConfig{5, 0, 0}}};
    EXPECT_TRUE(InputError(c.validate(8),
                           "rate-limit-groups[1].rate_limiter.ops.refill_time: must be > 0"));
}

TEST(Validate, LoggerAndMetricsPaths) {
    VmConfig c = valid_config();
    c.logger = LoggerConfig{};
    EXPECT_TRUE(c.validate(8));  // no log_path: the usual stderr
    c.logger->log_path = "";
    EXPECT_TRUE(InputError(c.validate(8), "logger.log_path: empty"));
    c = valid_config();
    c.metrics = MetricsConfig{};
    EXPECT_TRUE(InputError(c.validate(8), "metrics.metrics_path: empty"));
}

TEST(Mac, ParseAndFormat) {
    auto mac = parse_mac("52:54:00:AB:cd:0f");
    ASSERT_TRUE(mac);
    EXPECT_EQ(*mac, (MacAddress{0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f}));
    EXPECT_EQ(format_mac(*mac), "52:54:00:ab:cd:0f");
    EXPECT_TRUE(InputError(parse_mac("52:54:00:ab:cd"), "expected six hex bytes"));
    EXPECT_TRUE(InputError(parse_mac("52:54:00:ab:cd:0f:00"), "expected six hex bytes"));
    EXPECT_TRUE(InputError(parse_mac("52-54-00-ab-cd-0f"), "expected six hex bytes"));
    EXPECT_TRUE(InputError(parse_mac("5:254:00:ab:cd:0f"), "invalid MAC address"));
    EXPECT_TRUE(InputError(parse_mac("52:54:00:ab:cd:+f"), "invalid MAC address"));
    EXPECT_TRUE(InputError(parse_mac("01:00:5e:00:00:01"), "multicast"));
    EXPECT_TRUE(InputError(parse_mac(""), "invalid MAC address"));
}

}  // namespace
}  // namespace rv

namespace rv {
namespace {

// Firecracker's root device: first among the drives, and root= on the
// kernel command line unless boot_args names one.
TEST(RootDevice, GoesFirstAndNamesItselfOnTheCommandLine) {
    VmConfig c;
    c.cmdline = "console=ttyS0 quiet";
    c.disks = {disk("/data.img", "data"), disk("/root.img", "rootfs")};
    c.disks[1].is_root_device = true;
    c.disks[1].read_only = true;
    c.resolve_defaults();
    ASSERT_EQ(c.disks.size(), 2u);
    EXPECT_EQ(c.disks[0].id, "rootfs");
    EXPECT_EQ(c.disks[1].id, "data");
    EXPECT_EQ(c.kernel_cmdline(), "console=ttyS0 quiet root=/dev/vda ro");
    c.disks[0].read_only = false;
    EXPECT_EQ(c.kernel_cmdline(), "console=ttyS0 quiet root=/dev/vda rw");
    // What the user names wins; the stored command line is never changed.
    c.cmdline = "console=ttyS0 root=LABEL=rvroot";
    EXPECT_EQ(c.kernel_cmdline(), "console=ttyS0 root=LABEL=rvroot");
    c.cmdline = "";
    EXPECT_EQ(c.kernel_cmdline(), "root=/dev/vda rw");
}

TEST(RootDevice, IdeRootAndNoRootDevice) {
    VmConfig c;
    c.cmdline = "console=ttyS0";
    c.disks = {disk("/a.img", "a"), disk("/r.img", "r", DiskConfig::Interface::Ide)};
    EXPECT_EQ(c.kernel_cmdline(), "console=ttyS0");  // no root device: unchanged
    c.disks[1].is_root_device = true;
    c.resolve_defaults();
    EXPECT_EQ(c.disks[0].id, "r");
    EXPECT_EQ(c.kernel_cmdline(), "console=ttyS0 root=/dev/sda rw");
    // A word that only contains "root=" is not a root= parameter.
    c.cmdline = "console=ttyS0 rv.root=x";
    EXPECT_EQ(c.kernel_cmdline(), "console=ttyS0 rv.root=x root=/dev/sda rw");
}

// virtio-blk queues: one per vCPU unless given (decided when the VM is built,
// not resolved into the config), within 1..kMaxQueues; an IDE disk has none.
TEST(DiskQueues, DefaultIsOnePerVcpuAndIsChecked) {
    VmConfig c;
    c.kernel_path = "/k";
    c.cpus = 3;
    c.disks = {disk("/a.img", "a"), disk("/b.img", "b"), disk("/c.img", "c", DiskConfig::Interface::Ide)};
    c.disks[1].num_queues = 4;
    c.resolve_defaults();
    EXPECT_FALSE(c.disks[0].num_queues) << "not resolved: the vCPU count may still change";
    EXPECT_EQ(c.disks[0].queue_count(3), 3u);
    EXPECT_EQ(c.disks[0].queue_count(1), 1u);
    EXPECT_EQ(c.disks[0].queue_count(200), DiskConfig::kMaxQueues);
    EXPECT_EQ(c.disks[1].num_queues, 4u);  // what the user gave stays
    EXPECT_EQ(c.disks[1].queue_count(1), 4u);
    EXPECT_FALSE(c.disks[2].num_queues);
    EXPECT_TRUE(c.validate(kMaxCpus));

    for (unsigned n : {0u, DiskConfig::kMaxQueues + 1}) {
        VmConfig bad = c;
        bad.disks[0].num_queues = n;
        auto r = bad.validate(kMaxCpus);
        ASSERT_FALSE(r) << n;
        EXPECT_NE(r.error().message().find("drives[0].num_queues"), std::string::npos);
    }
    VmConfig ide = c;
    ide.disks[2].num_queues = 2;
    auto r = ide.validate(kMaxCpus);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("an IDE disk has no queues"), std::string::npos);
}

TEST(Validate, CpuPolicyAndCgroupParent) {
    VmConfig c;
    c.kernel_path = "/k";
    c.cpu_policy.weight = 0;
    auto bad = c.validate(4);
    ASSERT_FALSE(bad);
    EXPECT_TRUE(bad.error().is_input());
    EXPECT_NE(bad.error().message().find("cpu_weight 0"), std::string::npos) << bad.error().message();
    c.cpu_policy.weight = 200;
    EXPECT_TRUE(c.validate(4));
    c.cgroup_parent.reset();  // --no-cgroup
    auto none = c.validate(4);
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message().find("--no-cgroup"), std::string::npos);
    c.cpu_policy = {};
    EXPECT_TRUE(c.validate(4));
    for (const char* parent : {"..", "a/../b", "a/./b"}) {
        c.cgroup_parent = parent;
        EXPECT_FALSE(c.validate(4)) << parent;
    }
    c.cgroup_parent = "machines/ringvisor";
    EXPECT_TRUE(c.validate(4));
    // The io weight: the same range, and it needs the cgroup too.
    c.cpu_policy.io_weight = 10001;
    EXPECT_TRUE(InputError(c.validate(4), "io_weight 10001: must be 1..10000"));
    c.cpu_policy.io_weight = 1;
    EXPECT_TRUE(c.validate(4));
    c.cgroup_parent.reset();
    EXPECT_TRUE(InputError(c.validate(4), "io_max need the VM's cgroup"));
}

}  // namespace
}  // namespace rv
