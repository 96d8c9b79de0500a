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

}  // namespace
}  // namespace rv
