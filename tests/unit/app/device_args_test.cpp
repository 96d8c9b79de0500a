#include "app/device_args.h"

#include <gtest/gtest.h>

namespace rv {
namespace {

TEST(DiskArg, DefaultsToWritableVirtioWriteback) {
    auto d = parse_disk_arg("/img/a.raw");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->path, "/img/a.raw");
    EXPECT_FALSE(d->read_only);
    EXPECT_EQ(d->iface, DiskConfig::Interface::Virtio);
    EXPECT_EQ(d->cache, DiskConfig::Cache::Writeback);
}

TEST(DiskArg, ParsesOptions) {
    auto d = parse_disk_arg("x.img,ro,iface=virtio,cache=none");
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->read_only);
    EXPECT_EQ(d->cache, DiskConfig::Cache::None);
}

TEST(DiskArg, IdeInterface) {
    auto d = parse_disk_arg("x.img,iface=ide,cache=none");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->iface, DiskConfig::Interface::Ide);
    EXPECT_EQ(d->cache, DiskConfig::Cache::None);
}

TEST(DiskArg, RejectsUnknownOptions) {
    EXPECT_FALSE(parse_disk_arg(""));
    EXPECT_FALSE(parse_disk_arg(",ro"));
    auto bad = parse_disk_arg("x.img,iface=scsi");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("unsupported interface 'scsi'"), std::string::npos);
    EXPECT_FALSE(parse_disk_arg("x.img,cache=maybe"));
    EXPECT_FALSE(parse_disk_arg("x.img,readonly"));
}

TEST(NetArg, ParsesTapAndMac) {
    auto n = parse_net_arg("tap=tap0,mac=52:54:00:12:34:5a");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->tap, "tap0");
    ASSERT_TRUE(n->mac);
    EXPECT_EQ((*n->mac)[0], 0x52);
    EXPECT_EQ((*n->mac)[5], 0x5a);
    auto plain = parse_net_arg("tap=rv1");
    ASSERT_TRUE(plain);
    EXPECT_FALSE(plain->mac);
}

TEST(NetArg, Model) {
    EXPECT_EQ(parse_net_arg("tap=t0")->model, NetConfig::Model::Virtio);
    EXPECT_EQ(parse_net_arg("tap=t0,model=e1000")->model, NetConfig::Model::E1000);
    EXPECT_EQ(parse_net_arg("model=virtio,tap=t0")->model, NetConfig::Model::Virtio);
    auto bad = parse_net_arg("tap=t0,model=rtl8139");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("unsupported model 'rtl8139'"), std::string::npos);
}

TEST(NetArg, RejectsBadInput) {
    EXPECT_FALSE(parse_net_arg("mac=52:54:00:12:34:56"));  // no tap
    EXPECT_FALSE(parse_net_arg("tap=t0,mac=52:54:00:12:34"));
    EXPECT_FALSE(parse_net_arg("tap=t0,mac=01:00:5e:00:00:01"));  // multicast
    EXPECT_FALSE(parse_net_arg("tap=t0,mac=zz:54:00:12:34:56"));
    EXPECT_FALSE(parse_net_arg("tap=t0,speed=10G"));
}

TEST(DiskArg, IdRootEngineAndUnsafeCache) {
    auto d = parse_disk_arg("/img/root.ext4,id=rootfs,root,engine=sync,cache=unsafe,ro");
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->id, "rootfs");
    EXPECT_TRUE(d->is_root_device);
    EXPECT_EQ(d->engine, BlockOptions::Engine::Sync);
    EXPECT_EQ(d->cache, DiskConfig::Cache::Unsafe);
    EXPECT_TRUE(d->read_only);
    EXPECT_EQ(parse_disk_arg("x.img,engine=uring")->engine, BlockOptions::Engine::IoUring);
}

TEST(DiskArg, LeavesIdAndDerivedFieldsEmpty) {
    auto d = parse_disk_arg("x.img");
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->id.empty());  // VmConfig::resolve_defaults names it
    EXPECT_TRUE(d->serial.empty());
    EXPECT_FALSE(d->is_root_device);
    EXPECT_EQ(d->engine, BlockOptions::Engine::IoUring);
    EXPECT_FALSE(d->rate_limiter);
}

TEST(DiskArg, RejectsBadNewOptions) {
    auto engine = parse_disk_arg("x.img,engine=aio");
    ASSERT_FALSE(engine);
    EXPECT_TRUE(engine.error().is_input());
    EXPECT_NE(engine.error().message().find("unsupported engine 'aio'"), std::string::npos);
    auto cache = parse_disk_arg("x.img,cache=directsync");
    ASSERT_FALSE(cache);
    EXPECT_NE(cache.error().message().find("unsupported cache 'directsync'"), std::string::npos);
    auto id = parse_disk_arg("x.img,id=");
    ASSERT_FALSE(id);
    EXPECT_NE(id.error().message().find("id= needs a name"), std::string::npos);
    EXPECT_FALSE(parse_disk_arg("x.img,root=yes"));
}

TEST(NetArg, Id) {
    auto n = parse_net_arg("tap=tap0,id=uplink,model=e1000");
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(n->id, "uplink");
    EXPECT_TRUE(parse_net_arg("tap=tap0")->id.empty());
    auto bad = parse_net_arg("tap=tap0,id=");
    ASSERT_FALSE(bad);
    EXPECT_TRUE(bad.error().is_input());
}

TEST(DeviceArgs, ErrorsAreInputErrors) {
    EXPECT_TRUE(parse_disk_arg("").error().is_input());
    EXPECT_TRUE(parse_disk_arg("x,iface=scsi").error().is_input());
    EXPECT_TRUE(parse_net_arg("mac=52:54:00:12:34:56").error().is_input());
    EXPECT_TRUE(parse_net_arg("tap=t0,mac=52:54").error().is_input());
    EXPECT_TRUE(parse_net_arg("tap=t0,speed=10G").error().is_input());
}

TEST(DeviceArgs, ResolvedLikeTheJson) {
    // The CLI's structs go through the same resolve_defaults as --config-file's.
    VmConfig c;
    c.kernel_path = "/k";
    c.disks.push_back(*parse_disk_arg("a.img"));
    c.disks.push_back(*parse_disk_arg("b.img,iface=ide,id=legacy"));
    c.nets.push_back(*parse_net_arg("tap=tap0"));
    c.resolve_defaults();
    EXPECT_EQ(c.disks[0].id, "drive0");
    EXPECT_EQ(c.disks[0].serial, "ringvisor-drive0");
    EXPECT_EQ(c.disks[1].serial, "RV-HD0");
    EXPECT_EQ(c.nets[0].id, "net0");
    EXPECT_EQ(c.nets[0].mac, default_mac("tap0"));
    EXPECT_TRUE(c.validate(kMaxCpus));
}

TEST(DiskArg, NumQueues) {
    auto d = parse_disk_arg("x.img,num_queues=4");
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->num_queues, 4u);
    EXPECT_FALSE(parse_disk_arg("x.img")->num_queues);  // resolved later: one per vCPU
    for (const char* bad : {"x.img,num_queues=", "x.img,num_queues=two", "x.img,num_queues=4x",
                            "x.img,num_queues=-1"}) {
        auto r = parse_disk_arg(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().message().find("num_queues= needs a number"), std::string::npos)
            << r.error().message();
    }
}

// Cloud Hypervisor's keys: a drive's own buckets, its group, and the group.
TEST(DiskArg, RateLimitsAndGroup) {
    auto d = parse_disk_arg("x.img,bw_size=1048576,bw_refill_time=100,ops_size=50,"
                            "ops_refill_time=1000,ops_one_time_burst=5,rate_limit_group=tenant_a");
    ASSERT_TRUE(d) << d.error().message();
    ASSERT_TRUE(d->rate_limiter);
    EXPECT_EQ(d->rate_limiter->bandwidth, (TokenBucketConfig{1048576, 0, 100}));
    EXPECT_EQ(d->rate_limiter->ops, (TokenBucketConfig{50, 5, 1000}));
    EXPECT_EQ(d->rate_limit_group, "tenant_a");
    auto plain = parse_disk_arg("x.img");
    EXPECT_FALSE(plain->rate_limiter);
    EXPECT_FALSE(plain->rate_limit_group);
    EXPECT_TRUE(parse_disk_arg("x.img,bw_size=2")->rate_limiter->bandwidth);  // validate checks it
    for (const char* bad : {"x.img,bw_size=", "x.img,bw_size=1M", "x.img,ops_refill_time=-1",
                            "x.img,rate_limit_group=", "x.img,bw_speed=5"}) {
        auto r = parse_disk_arg(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_TRUE(r.error().is_input()) << bad;
    }
}

TEST(RateLimitGroupArg, IdAndBuckets) {
    auto g = parse_rate_limit_group_arg("id=tenant_a,bw_size=2097152,bw_one_time_burst=1024,bw_refill_time=250");
    ASSERT_TRUE(g) << g.error().message();
    EXPECT_EQ(g->id, "tenant_a");
    EXPECT_EQ(g->limits.bandwidth, (TokenBucketConfig{2097152, 1024, 250}));
    EXPECT_FALSE(g->limits.ops);
    auto ops = parse_rate_limit_group_arg("ops_size=100,ops_refill_time=1000,id=iops");
    ASSERT_TRUE(ops);
    EXPECT_EQ(ops->limits.ops, (TokenBucketConfig{100, 0, 1000}));
    for (const char* bad : {"bw_size=1,bw_refill_time=1", "id=,bw_size=1", "id=g,size=1",
                            "id=g,bw_size=x"}) {
        auto r = parse_rate_limit_group_arg(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_TRUE(r.error().is_input()) << bad;
    }
    // The same validation as the JSON's: a group that limits nothing is refused there.
    VmConfig c;
    c.kernel_path = "/k";
    c.rate_limit_groups.push_back(*parse_rate_limit_group_arg("id=g"));
    c.disks.push_back(*parse_disk_arg("a.img,rate_limit_group=g"));
    auto r = c.validate(kMaxCpus);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("limits nothing"), std::string::npos) << r.error().message();
}

TEST(NetArg, Queues) {
    EXPECT_FALSE(parse_net_arg("tap=t0")->queues) << "default: one per vCPU, resolved later";
    EXPECT_EQ(parse_net_arg("tap=t0,queues=1")->queues, 1u);
    EXPECT_EQ(parse_net_arg("queues=4,tap=t0")->queues, 4u);
    EXPECT_EQ(parse_net_arg("tap=t0,queues=16")->queues, 16u);
    EXPECT_EQ(parse_net_arg("tap=t0,model=e1000,queues=1")->queues, 1u);
    for (const char* bad : {"tap=t0,queues=0", "tap=t0,queues=17", "tap=t0,queues=two",
                            "tap=t0,queues=", "tap=t0,queues=-1", "tap=t0,queues=4x",
                            "tap=t0,queues=99999999999"}) {
        auto n = parse_net_arg(bad);
        ASSERT_FALSE(n) << bad;
        EXPECT_TRUE(n.error().is_input());
        EXPECT_NE(n.error().message().find("queues= needs a number from 1 to 16"),
                  std::string::npos)
            << n.error().message();
    }
    // The e1000 has one queue pair, whichever order the options come in.
    for (const char* e1000 : {"tap=t0,model=e1000,queues=2", "tap=t0,queues=2,model=e1000"}) {
        auto n = parse_net_arg(e1000);
        ASSERT_FALSE(n) << e1000;
        EXPECT_NE(n.error().message().find("model=e1000 has one queue pair"), std::string::npos)
            << n.error().message();
    }
}

}  // namespace
}  // namespace rv
