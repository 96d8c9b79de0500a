// The device bodies: Drive, PartialDrive, NetworkInterface,
// PartialNetworkInterface, EntropyDevice, RateLimiter / TokenBucket, and
// ringvisor's rate limit groups.
#include <gtest/gtest.h>

#include "unit/vmm/config_json_test_support.h"
#include "vmm/config_json.h"
#include "vmm/config_json_reader.h"

namespace rv {
namespace {

using nlohmann::json;
using testing_support::InputError;

json drive_body(json extra = json::object()) {
    json body = {
        {"drive_id", "rootfs"}, {"path_on_host", "/img/root.ext4"}, {"is_root_device", true}};
    body.update(extra);
    return body;
}

json net_body(json extra = json::object()) {
    json body = {{"iface_id", "eth0"}, {"host_dev_name", "tap0"}};
    body.update(extra);
    return body;
}

const json kLimiter = {
    {"bandwidth", {{"size", 1048576}, {"one_time_burst", 4096}, {"refill_time", 100}}},
    {"ops", {{"size", 100}, {"refill_time", 1000}}}};

TEST(RateLimiterJson, ParsesBothBuckets) {
    auto l = rate_limiter_from_json(kLimiter, "rate_limiter");
    ASSERT_TRUE(l) << l.error().message();
    EXPECT_EQ(l->bandwidth, (TokenBucketConfig{1048576, 4096, 100}));
    EXPECT_EQ(l->ops, (TokenBucketConfig{100, 0, 1000}));
    EXPECT_EQ(rate_limiter_to_json(*l)["ops"]["one_time_burst"], 0);
    EXPECT_EQ(rate_limiter_from_json(rate_limiter_to_json(*l), "x"), *l);
}

TEST(RateLimiterJson, EmptyAndNullBuckets) {
    auto none = rate_limiter_from_json(json::object(), "rl");
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->unlimited());
    auto ops_only = rate_limiter_from_json(
        {{"bandwidth", nullptr}, {"ops", {{"size", 5}, {"refill_time", 1}}}}, "rl");
    ASSERT_TRUE(ops_only);
    EXPECT_FALSE(ops_only->bandwidth);
    EXPECT_EQ(rate_limiter_to_json(*ops_only),
              (json{{"ops", {{"size", 5}, {"one_time_burst", 0}, {"refill_time", 1}}}}));
}

TEST(RateLimiterJson, RefusesBadBuckets) {
    EXPECT_TRUE(InputError(rate_limiter_from_json({{"bandwidth", {{"size", 1}}}}, "rl"),
                           "rl.bandwidth.refill_time: missing"));
    EXPECT_TRUE(InputError(rate_limiter_from_json({{"ops", {{"refill_time", 1}}}}, "rl"),
                           "rl.ops.size: missing"));
    EXPECT_TRUE(
        InputError(rate_limiter_from_json({{"ops", {{"size", -1}, {"refill_time", 1}}}}, "rl"),
                   "rl.ops.size: -1 is out of range"));
    EXPECT_TRUE(
        InputError(rate_limiter_from_json({{"ops", {{"size", "1"}, {"refill_time", 1}}}}, "rl"),
                   "rl.ops.size: expected an integer, got a string"));
    EXPECT_TRUE(InputError(
        rate_limiter_from_json({{"ops", {{"size", 1}, {"refill_time", 1}, {"rate", 2}}}}, "rl"),
        "unknown field 'rate' in rl.ops"));
    EXPECT_TRUE(InputError(rate_limiter_from_json({{"iops", json::object()}}, "rl"),
                           "unknown field 'iops' in rl"));
    EXPECT_TRUE(InputError(rate_limiter_from_json(json::array(), "rl"), "rl: expected an object"));
    EXPECT_TRUE(
        InputError(rate_limiter_from_json({{"ops", 3}}, "rl"), "rl.ops: expected an object"));
}

TEST(DriveJson, ParsesEveryField) {
    auto d = drive_from_json("rootfs", drive_body({{"is_read_only", true},
                                                   {"cache_type", "None"},
                                                   {"io_engine", "Async"},
                                                   {"iface", "ide"},
                                                   {"partuuid", nullptr},
                                                   {"socket", nullptr},
                                                   {"rate_limiter", kLimiter}}));
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->id, "rootfs");
    EXPECT_EQ(d->path, "/img/root.ext4");
    EXPECT_TRUE(d->is_root_device);
    EXPECT_TRUE(d->read_only);
    EXPECT_EQ(d->cache, DiskConfig::Cache::None);
    EXPECT_EQ(d->engine, BlockOptions::Engine::IoUring);
    EXPECT_EQ(d->iface, DiskConfig::Interface::Ide);
    ASSERT_TRUE(d->rate_limiter);
    EXPECT_EQ(d->rate_limiter->ops->size, 100u);
    EXPECT_TRUE(d->serial.empty());  // resolved by the VMM
}

TEST(DriveJson, DefaultsAndChoices) {
    auto d = drive_from_json("d", {{"drive_id", "d"}, {"path_on_host", "/x"}});
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->is_root_device);  // Firecracker requires it; we default to false
    EXPECT_FALSE(d->read_only);
    EXPECT_EQ(d->cache, DiskConfig::Cache::Writeback);
    EXPECT_EQ(d->engine, BlockOptions::Engine::IoUring);
    EXPECT_EQ(d->iface, DiskConfig::Interface::Virtio);
    EXPECT_EQ(drive_from_json("rootfs", drive_body({{"cache_type", "Unsafe"}}))->cache,
              DiskConfig::Cache::Unsafe);
    EXPECT_EQ(drive_from_json("rootfs", drive_body({{"cache_type", "Writeback"}}))->cache,
              DiskConfig::Cache::Writeback);
    EXPECT_EQ(drive_from_json("rootfs", drive_body({{"io_engine", "Sync"}}))->engine,
              BlockOptions::Engine::Sync);
    EXPECT_EQ(drive_from_json("rootfs", drive_body({{"iface", "virtio"}}))->iface,
              DiskConfig::Interface::Virtio);
}

TEST(DriveJson, RefusesBadInput) {
    EXPECT_TRUE(InputError(drive_from_json("other", drive_body()),
                           "drive_id: 'rootfs' does not match the id in the path, 'other'"));
    EXPECT_TRUE(
        InputError(drive_from_json("rootfs", {{"drive_id", "rootfs"}}), "path_on_host: missing"));
    EXPECT_TRUE(InputError(drive_from_json("", {{"path_on_host", "/x"}}), "drive_id: missing"));
    EXPECT_TRUE(InputError(drive_from_json("", drive_body({{"drive_id", ""}})), "drive_id: empty"));
    EXPECT_TRUE(InputError(drive_from_json("rootfs", drive_body({{"path_on_host", 1}})),
                           "path_on_host: expected a string"));
    EXPECT_TRUE(InputError(drive_from_json("rootfs", drive_body({{"is_root_device", "yes"}})),
                           "is_root_device: expected a boolean"));
    EXPECT_TRUE(InputError(drive_from_json("rootfs", drive_body({{"is_read_only", 0}})),
                           "is_read_only: expected a boolean"));
    EXPECT_TRUE(InputError(drive_from_json("rootfs", drive_body({{"cache_type", "writeback"}})),
                           "cache_type: 'writeback' is not one of Unsafe, Writeback, None"));
    EXPECT_TRUE(InputError(drive_from_json("rootfs", drive_body({{"io_engine", "Uring"}})),
                           "io_engine: 'Uring' is not one of Sync, Async"));
    EXPECT_TRUE(InputError(drive_from_json("rootfs", drive_body({{"iface", "scsi"}})),
                           "iface: 'scsi' is not one of virtio, ide"));
    EXPECT_TRUE(InputError(drive_from_json("rootfs", drive_body({{"partuuid", "0eaa91a0-01"}})),
                           "partuuid: not supported"));
    EXPECT_TRUE(InputError(drive_from_json("rootfs", drive_body({{"socket", "/run/vhost.sock"}})),
                           "socket: vhost-user block devices are not supported"));
    EXPECT_TRUE(InputError(drive_from_json("rootfs", drive_body({{"rate_limiter", {{"ops", 1}}}})),
                           "rate_limiter.ops: expected an object"));
    EXPECT_TRUE(
        InputError(drive_from_json("rootfs", drive_body({{"foo", 1}})), "unknown field 'foo'"));
}

TEST(DriveJson, ToJsonRoundTrips) {
    VmConfig c;
    c.disks.push_back(*drive_from_json(
        "rootfs", drive_body({{"rate_limiter", kLimiter}, {"cache_type", "None"}})));
    c.kernel_path = "/k";
    json doc = config_to_json(c);
    EXPECT_TRUE(doc["drives"][0]["partuuid"].is_null());
    EXPECT_EQ(doc["drives"][0]["cache_type"], "None");
    auto back = drive_from_json("rootfs", doc["drives"][0]);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(*back, c.disks[0]);
}

// ringvisor's extension: num_queues (virtio-blk request queues).
TEST(DriveJson, NumQueues) {
    auto d = drive_from_json("rootfs", drive_body({{"num_queues", 2}}));
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->num_queues, 2u);
    EXPECT_FALSE(drive_from_json("rootfs", drive_body())->num_queues);
    EXPECT_FALSE(drive_from_json("rootfs", drive_body({{"num_queues", nullptr}}))->num_queues);
    EXPECT_FALSE(drive_from_json("rootfs", drive_body({{"num_queues", 0}})));
    EXPECT_FALSE(drive_from_json("rootfs", drive_body({{"num_queues", 65}})));
    EXPECT_FALSE(drive_from_json("rootfs", drive_body({{"num_queues", "2"}})));
    VmConfig c;
    c.kernel_path = "/k";
    c.disks.push_back(*d);
    json doc = config_to_json(c);
    EXPECT_EQ(doc["drives"][0]["num_queues"], 2);
    EXPECT_EQ(*drive_from_json("rootfs", doc["drives"][0]), c.disks[0]);
}

// ringvisor's extension: a drive in a rate limit group, and the group's body
// (PUT /rate-limit-groups/{id}, an entry of the document's list).
TEST(DriveJson, RateLimitGroup) {
    auto d = drive_from_json("rootfs", drive_body({{"rate_limit_group", "tenant_a"}}));
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->rate_limit_group, "tenant_a");
    EXPECT_FALSE(drive_from_json("rootfs", drive_body())->rate_limit_group);
    EXPECT_FALSE(drive_from_json("rootfs", drive_body({{"rate_limit_group", nullptr}}))->rate_limit_group);
    EXPECT_TRUE(InputError(drive_from_json("rootfs", drive_body({{"rate_limit_group", ""}})),
                           "rate_limit_group: empty"));
    EXPECT_TRUE(InputError(drive_from_json("rootfs", drive_body({{"rate_limit_group", 1}})),
                           "rate_limit_group: expected a string"));
    VmConfig c;
    c.disks.push_back(*d);
    json doc = config_to_json(c);
    EXPECT_EQ(doc["drives"][0]["rate_limit_group"], "tenant_a");
    EXPECT_EQ(*drive_from_json("rootfs", doc["drives"][0]), c.disks[0]);
    // Not a runtime change: PATCH refuses it as it refuses every unknown field.
    EXPECT_TRUE(InputError(drive_update_from_json("rootfs", {{"drive_id", "rootfs"},
                                                             {"rate_limit_group", "b"}}),
                           "unknown field 'rate_limit_group'"));
}

TEST(RateLimitGroupJson, GoodAndBad) {
    auto g = rate_limit_group_from_json("tenant_a", {{"id", "tenant_a"}, {"rate_limiter", kLimiter}});
    ASSERT_TRUE(g) << g.error().message();
    EXPECT_EQ(g->id, "tenant_a");
    ASSERT_TRUE(g->limits.bandwidth);
    EXPECT_EQ(g->limits.bandwidth->size, 1048576u);
    EXPECT_EQ(g->limits.bandwidth->one_time_burst, 4096u);
    EXPECT_EQ(g->limits.ops->refill_time_ms, 1000u);
    EXPECT_EQ(rate_limit_group_to_json(*g),
              (json{{"id", "tenant_a"},
                    {"rate_limiter",
                     {{"bandwidth", {{"size", 1048576}, {"one_time_burst", 4096}, {"refill_time", 100}}},
                      {"ops", {{"size", 100}, {"one_time_burst", 0}, {"refill_time", 1000}}}}}}));
    EXPECT_EQ(*rate_limit_group_from_json("tenant_a", rate_limit_group_to_json(*g)), *g);
    EXPECT_TRUE(InputError(rate_limit_group_from_json("b", {{"id", "a"}, {"rate_limiter", kLimiter}}),
                           "id: 'a' does not match the id in the path, 'b'"));
    EXPECT_TRUE(InputError(rate_limit_group_from_json("a", {{"id", "a"}}), "rate_limiter: missing"));
    EXPECT_TRUE(InputError(rate_limit_group_from_json("a", {{"rate_limiter", kLimiter}}), "id: missing"));
    EXPECT_TRUE(InputError(
        rate_limit_group_from_json("a", {{"id", "a"}, {"rate_limiter", {{"bandwidth", 5}}}}),
        "rate_limiter.bandwidth: expected an object"));
    EXPECT_TRUE(InputError(
        rate_limit_group_from_json("a", {{"id", "a"}, {"rate_limiter", kLimiter}, {"x", 1}}),
        "unknown field 'x'"));
}

TEST(PartialDriveJson, GoodAndBad) {
    auto u =
        drive_update_from_json("rootfs", {{"drive_id", "rootfs"}, {"path_on_host", "/new.img"}});
    ASSERT_TRUE(u) << u.error().message();
    EXPECT_EQ(u->id, "rootfs");
    EXPECT_EQ(u->path_on_host, "/new.img");
    EXPECT_FALSE(u->rate_limiter);
    auto rl = drive_update_from_json("d", {{"drive_id", "d"}, {"rate_limiter", kLimiter}});
    ASSERT_TRUE(rl);
    EXPECT_FALSE(rl->path_on_host);
    EXPECT_TRUE(rl->rate_limiter);
    EXPECT_TRUE(InputError(drive_update_from_json("a", {{"drive_id", "b"}}), "does not match"));
    EXPECT_TRUE(InputError(drive_update_from_json("a", json::object()), "drive_id: missing"));
    EXPECT_TRUE(InputError(drive_update_from_json("a", {{"drive_id", "a"}, {"path_on_host", ""}}),
                           "path_on_host: empty"));
    EXPECT_TRUE(InputError(drive_update_from_json("a", {{"drive_id", "a"}, {"is_read_only", true}}),
                           "unknown field 'is_read_only'"));
    EXPECT_TRUE(
        InputError(drive_update_from_json("a", {{"drive_id", "a"}, {"rate_limiter", "fast"}}),
                   "rate_limiter: expected an object"));
}

TEST(NetJson, ParsesEveryField) {
    auto n = net_from_json("eth0", net_body({{"guest_mac", "06:00:AC:10:00:02"},
                                             {"model", "e1000"},
                                             {"rx_rate_limiter", kLimiter},
                                             {"tx_rate_limiter", nullptr}}));
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(n->id, "eth0");
    EXPECT_EQ(n->tap, "tap0");
    EXPECT_EQ(n->mac, (MacAddress{0x06, 0x00, 0xac, 0x10, 0x00, 0x02}));
    EXPECT_EQ(n->model, NetConfig::Model::E1000);
    EXPECT_TRUE(n->rx_rate_limiter);
    EXPECT_FALSE(n->tx_rate_limiter);
    auto plain = net_from_json("eth0", net_body());
    ASSERT_TRUE(plain);
    EXPECT_FALSE(plain->mac);  // resolved later from the TAP name
    EXPECT_EQ(plain->model, NetConfig::Model::Virtio);
}

TEST(NetJson, RefusesBadInput) {
    EXPECT_TRUE(InputError(net_from_json("eth1", net_body()),
                           "iface_id: 'eth0' does not match the id in the path, 'eth1'"));
    EXPECT_TRUE(
        InputError(net_from_json("eth0", {{"iface_id", "eth0"}}), "host_dev_name: missing"));
    EXPECT_TRUE(
        InputError(net_from_json("eth0", {{"host_dev_name", "tap0"}}), "iface_id: missing"));
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"host_dev_name", nullptr}})),
                           "host_dev_name: expected a string, got null"));
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"guest_mac", "06:00:ac:10:00"}})),
                           "guest_mac: invalid MAC address '06:00:ac:10:00'"));
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"guest_mac", "01:00:5e:00:00:01"}})),
                           "guest_mac: invalid MAC address '01:00:5e:00:00:01': multicast"));
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"guest_mac", "zz:00:5e:00:00:01"}})),
                           "guest_mac: invalid MAC address"));
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"guest_mac", 6}})),
                           "guest_mac: expected a string"));
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"model", "rtl8139"}})),
                           "model: 'rtl8139' is not one of virtio, e1000"));
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"mtu", 9000}})), "mtu: not supported"));
    EXPECT_TRUE(
        InputError(net_from_json("eth0", net_body({{"tx_rate_limiter", {{"ops", {{"size", 1}}}}}})),
                   "tx_rate_limiter.ops.refill_time: missing"));
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"allow_mmds_requests", true}})),
                           "unknown field 'allow_mmds_requests'"));
}

TEST(NetJson, Queues) {
    auto n = net_from_json("eth0", net_body({{"queues", 4}}));
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(n->queues, 4u);
    EXPECT_FALSE(net_from_json("eth0", net_body())->queues) << "absent: one per vCPU, later";
    EXPECT_FALSE(net_from_json("eth0", net_body({{"queues", nullptr}}))->queues);
    EXPECT_EQ(config_json::net_to_json(*n)["queues"], 4);
    EXPECT_TRUE(config_json::net_to_json(*net_from_json("eth0", net_body()))["queues"].is_null());
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"queues", 0}})),
                           "queues: 0 is out of range 1..16"));
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"queues", 17}})),
                           "queues: 17 is out of range 1..16"));
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"queues", -1}})),
                           "queues: -1 is out of range"));
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"queues", "4"}})),
                           "queues: expected an integer"));
    EXPECT_TRUE(InputError(net_from_json("eth0", net_body({{"queues", 2.5}})),
                           "queues: expected an integer"));
    EXPECT_TRUE(
        InputError(net_from_json("eth0", net_body({{"queues", 2}, {"model", "e1000"}})),
                   "queues: 2 queue pairs, but the e1000 model has one"));
    EXPECT_TRUE(net_from_json("eth0", net_body({{"queues", 1}, {"model", "e1000"}})));
}

TEST(PartialNetJson, GoodAndBad) {
    auto u = net_update_from_json("eth0", {{"iface_id", "eth0"}, {"tx_rate_limiter", kLimiter}});
    ASSERT_TRUE(u) << u.error().message();
    EXPECT_EQ(u->id, "eth0");
    EXPECT_FALSE(u->rx_rate_limiter);
    ASSERT_TRUE(u->tx_rate_limiter);
    EXPECT_EQ(u->tx_rate_limiter->bandwidth->refill_time_ms, 100u);
    EXPECT_TRUE(InputError(net_update_from_json("eth0", {{"iface_id", "eth9"}}), "does not match"));
    EXPECT_TRUE(InputError(net_update_from_json("eth0", json::object()), "iface_id: missing"));
    EXPECT_TRUE(
        InputError(net_update_from_json("eth0", {{"iface_id", "eth0"}, {"host_dev_name", "t"}}),
                   "unknown field 'host_dev_name'"));
    EXPECT_TRUE(
        InputError(net_update_from_json("eth0", {{"iface_id", "eth0"}, {"rx_rate_limiter", 1}}),
                   "rx_rate_limiter: expected an object"));
}

TEST(EntropyJson, GoodAndBad) {
    auto e = entropy_from_json({{"rate_limiter", kLimiter}});
    ASSERT_TRUE(e) << e.error().message();
    ASSERT_TRUE(e->rate_limiter);
    EXPECT_EQ(e->rate_limiter->bandwidth->size, 1048576u);
    auto plain = entropy_from_json(json::object());
    ASSERT_TRUE(plain);
    EXPECT_FALSE(plain->rate_limiter);
    EXPECT_TRUE(InputError(
        entropy_from_json({{"rate_limiter", {{"bandwidth", {{"size", 1.5}, {"refill_time", 1}}}}}}),
        "rate_limiter.bandwidth.size: expected an integer, got a number"));
    EXPECT_TRUE(
        InputError(entropy_from_json({{"device", "/dev/urandom"}}), "unknown field 'device'"));
    EXPECT_TRUE(InputError(entropy_from_json(nullptr), "expected a JSON object, got null"));
}

}  // namespace
}  // namespace rv
