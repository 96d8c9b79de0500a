// The configuration a snapshot carries: the machine and its devices come
// back as they were, the process's own settings are the restoring
// process's, and a clone's overrides change only TAPs and disk images.
#include <gtest/gtest.h>

#include "vmm/vm_snapshot_config.h"

namespace rv {
namespace {

VmConfig machine() {
    VmConfig c;
    c.kernel_path = "/k/vmlinuz";
    c.initrd_path = "/k/initrd";
    c.cmdline = "console=hvc0 quiet";
    c.memory_bytes = 768ull << 20;
    c.cpus = 2;
    c.console = ConsoleKind::Virtio;
    DiskConfig root;
    root.path = "/img/root.img";
    root.is_root_device = true;
    DiskConfig ide;
    ide.path = "/img/data.img";
    ide.iface = DiskConfig::Interface::Ide;
    c.disks = {root, ide};
    NetConfig net;
    net.tap = "tap0";
    net.id = "eth0";
    NetConfig e1000;
    e1000.tap = "tap1";
    e1000.model = NetConfig::Model::E1000;
    c.nets = {net, e1000};
    c.entropy = EntropyConfig{};
    c.resolve_defaults();
    return c;
}

snapshot::SnapshotFile file_of(const VmConfig& c) {
    snapshot::SnapshotFile f;
    EXPECT_TRUE(f.add("config", kSnapshotConfigVersion, encode_snapshot_config(c)));
    return f;
}

TEST(SnapshotConfig, TheMachineComesBackAndTheProcessKeepsItsOwnSettings) {
    const VmConfig saved = machine();
    VmConfig process;
    process.run_dir = "/run/other";
    process.console_in = -1;
    process.stats_path = "/tmp/stats.json";
    process.kvm_path = "/dev/kvm-test";
    auto c = snapshot_config(file_of(saved), process, {}, 8);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->kernel_path, saved.kernel_path);
    EXPECT_EQ(c->cmdline, saved.cmdline);
    EXPECT_EQ(c->memory_bytes, saved.memory_bytes);
    EXPECT_EQ(c->cpus, 2u);
    EXPECT_EQ(c->console, ConsoleKind::Virtio);
    ASSERT_EQ(c->disks.size(), 2u);
    EXPECT_EQ(c->disks[0].id, saved.disks[0].id);
    EXPECT_EQ(c->disks[1].iface, DiskConfig::Interface::Ide);
    EXPECT_EQ(c->disks[1].serial, saved.disks[1].serial);
    ASSERT_EQ(c->nets.size(), 2u);
    EXPECT_EQ(c->nets[0].mac, saved.nets[0].mac);
    EXPECT_EQ(c->nets[1].model, NetConfig::Model::E1000);
    EXPECT_TRUE(c->entropy);
    EXPECT_EQ(c->run_dir, "/run/other");
    EXPECT_EQ(c->console_in, -1);
    EXPECT_EQ(c->stats_path, "/tmp/stats.json");
    EXPECT_EQ(c->kvm_path, "/dev/kvm-test");
}

TEST(SnapshotConfig, OverridesChangeTapsAndImagesOnly) {
    const VmConfig saved = machine();
    SnapshotOverrides o;
    o.taps["eth0"] = "tap9";
    o.drive_paths[saved.disks[1].id] = "/img/clone.img";
    auto c = snapshot_config(file_of(saved), VmConfig{}, o, 8);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->nets[0].tap, "tap9");
    EXPECT_EQ(c->nets[1].tap, "tap1");
    EXPECT_EQ(c->nets[0].mac, saved.nets[0].mac) << "the guest's MAC is the snapshot's";
    EXPECT_EQ(c->disks[1].path, "/img/clone.img");
    EXPECT_EQ(c->disks[0].path, "/img/root.img");

    SnapshotOverrides unknown;
    unknown.taps["eth9"] = "tap9";
    auto r = snapshot_config(file_of(saved), VmConfig{}, unknown, 8);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidInput);
    SnapshotOverrides no_drive;
    no_drive.drive_paths["nope"] = "/x";
    EXPECT_FALSE(snapshot_config(file_of(saved), VmConfig{}, no_drive, 8));
}

TEST(SnapshotConfig, BrokenConfigSectionsAreRefused) {
    snapshot::SnapshotFile none;
    EXPECT_FALSE(snapshot_config(none, VmConfig{}, {}, 8));
    snapshot::SnapshotFile other_version;
    ASSERT_TRUE(other_version.add("config", kSnapshotConfigVersion + 1,
                                  encode_snapshot_config(machine())));
    EXPECT_FALSE(snapshot_config(other_version, VmConfig{}, {}, 8));
    auto bad = [](std::string text) {
        snapshot::SnapshotFile f;
        EXPECT_TRUE(f.add("config", kSnapshotConfigVersion, std::vector<uint8_t>(text.begin(), text.end())));
        auto r = snapshot_config(f, VmConfig{}, {}, 8);
        EXPECT_FALSE(r) << text;
        if (!r) {
            EXPECT_EQ(r.error().kind(), ErrorKind::InvalidInput);
        }
    };
    bad("not json");
    bad("[]");
    bad(R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 128}})");  // no boot-source
    bad(R"({"boot-source": {"kernel_image_path": "/k"}, "ringvisor": {"console": "usb"}})");
    // More vCPUs than this host allows.
    auto big = machine();
    big.cpus = 16;
    EXPECT_FALSE(snapshot_config(file_of(big), VmConfig{}, {}, 8));
}

}  // namespace
}  // namespace rv
