// The pre-boot configuration resources (boot-source, machine-config, drives,
// network-interfaces, entropy, logger, metrics) against a fake VMM: good
// bodies reach the VMM as config structs and answer 204; bad bodies, wrong
// content types and wrong states answer 400 with a fault_message naming the
// problem; a VMM failure is 500.
#include <gtest/gtest.h>

#include "unit/api/handler_call.h"

namespace rv::api {
namespace {

using test_support::HandlerTest;

class ConfigHandlers : public ::testing::Test, public HandlerTest {};

TEST_F(ConfigHandlers, PutBootSourceReachesTheVmm) {
    auto a = put("/boot-source",
                 R"({"kernel_image_path": "/k/vmlinux", "initrd_path": "/k/initrd",
                     "boot_args": "console=ttyS0 quiet"})");
    EXPECT_EQ(a.status, 204u) << a.fault();
    EXPECT_TRUE(a.body.is_null());
    auto boot = vmm.boot();
    ASSERT_TRUE(boot);
    EXPECT_EQ(boot->kernel_image_path, "/k/vmlinux");
    EXPECT_EQ(boot->initrd_path, "/k/initrd");
    EXPECT_EQ(boot->boot_args, "console=ttyS0 quiet");
    EXPECT_EQ(a.route, "PUT /boot-source");
}

TEST_F(ConfigHandlers, PutBootSourceWithoutKernelIs400NamingTheField) {
    auto a = put("/boot-source", R"({"boot_args": "quiet"})");
    EXPECT_EQ(a.status, 400u);
    EXPECT_NE(a.fault().find("kernel_image_path"), std::string::npos) << a.fault();
    EXPECT_FALSE(vmm.boot());
}

TEST_F(ConfigHandlers, UnknownFieldAndWrongTypeAre400) {
    auto unknown = put("/boot-source", R"({"kernel_image_path": "/k", "bogus": 1})");
    EXPECT_EQ(unknown.status, 400u);
    EXPECT_NE(unknown.fault().find("bogus"), std::string::npos) << unknown.fault();
    auto wrong_type = put("/boot-source", R"({"kernel_image_path": 7})");
    EXPECT_EQ(wrong_type.status, 400u);
    EXPECT_NE(wrong_type.fault().find("expected a string"), std::string::npos)
        << wrong_type.fault();
    auto not_object = put("/boot-source", R"(["/k"])");
    EXPECT_EQ(not_object.status, 400u);
}

TEST_F(ConfigHandlers, BodyMustBeJsonAndPresent) {
    auto empty = put("/boot-source", "");
    EXPECT_EQ(empty.status, 400u);
    EXPECT_NE(empty.fault().find("needs a JSON body"), std::string::npos) << empty.fault();
    auto garbage = put("/boot-source", "{\"kernel_image_path\": ");
    EXPECT_EQ(garbage.status, 400u);
    EXPECT_NE(garbage.fault().find("not valid JSON"), std::string::npos) << garbage.fault();
    EXPECT_TRUE(vmm.calls().empty());
}

TEST_F(ConfigHandlers, DeeplyNestedBodyIsRefusedWithoutRecursing) {
    // As deep as the server's body limit allows.
    const std::string nested = std::string(25000, '[') + std::string(25000, ']');
    auto a = put("/boot-source", nested);
    EXPECT_EQ(a.status, 400u);
    EXPECT_NE(a.fault().find("expected a JSON object"), std::string::npos) << a.fault();
    auto b = put("/drives/x", R"({"drive_id": "x", "path_on_host": )" + nested + "}");
    EXPECT_EQ(b.status, 400u);
}

TEST_F(ConfigHandlers, ContentTypeIsChecked) {
    const std::string body = R"({"kernel_image_path": "/k"})";
    auto form = call(http::verb::put, "/boot-source", body, "application/x-www-form-urlencoded");
    EXPECT_EQ(form.status, 400u);
    EXPECT_NE(form.fault().find("Content-Type"), std::string::npos) << form.fault();
    EXPECT_EQ(call(http::verb::put, "/boot-source", body, "application/json; charset=utf-8").status,
              204u);
    EXPECT_EQ(call(http::verb::put, "/boot-source", body, "Application/JSON").status, 204u);
    // Firecracker's HTTP library takes a missing Content-Type, and text/plain, as JSON.
    EXPECT_EQ(call(http::verb::put, "/boot-source", body, std::nullopt).status, 204u);
    EXPECT_EQ(call(http::verb::put, "/boot-source", body, "text/plain").status, 204u);
}

TEST_F(ConfigHandlers, PreBootResourcesAreNotAllowedAfterStart) {
    vmm.set_state(VmState::Running);
    auto a = put("/boot-source", R"({"kernel_image_path": "/k"})");
    EXPECT_EQ(a.status, 400u);
    EXPECT_NE(a.fault().find("after the VM has started"), std::string::npos) << a.fault();
    EXPECT_EQ(put("/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 128})").status, 400u);
    EXPECT_EQ(put("/drives/root", R"({"drive_id": "root", "path_on_host": "/d"})").status, 400u);
    EXPECT_EQ(put("/entropy", "{}").status, 400u);
    // The logger and metrics may be set at any time.
    EXPECT_EQ(put("/logger", R"({"level": "Info"})").status, 204u);
}

TEST_F(ConfigHandlers, VmmFailureIs500AndInputErrorIs400) {
    vmm.fail_next(Error("KVM_CREATE_VM: out of memory"));
    auto internal = put("/boot-source", R"({"kernel_image_path": "/k"})");
    EXPECT_EQ(internal.status, 500u);
    EXPECT_EQ(internal.fault(), "KVM_CREATE_VM: out of memory");
    vmm.fail_next(Error("kernel_image_path: /k: no such file", ENOENT, ErrorKind::InvalidInput));
    EXPECT_EQ(put("/boot-source", R"({"kernel_image_path": "/k"})").status, 400u);
}

TEST_F(ConfigHandlers, MachineConfigGetPutPatch) {
    auto got = get("/machine-config");
    EXPECT_EQ(got.status, 200u);
    EXPECT_EQ(got.body["vcpu_count"], 2);
    EXPECT_EQ(got.body["mem_size_mib"], 256);
    EXPECT_EQ(got.body["smt"], false);

    EXPECT_EQ(put("/machine-config",
                  R"({"vcpu_count": 4, "mem_size_mib": 1024, "track_dirty_pages": true})")
                  .status,
              204u);
    auto config = vmm.config();
    EXPECT_EQ(config.cpus, 4u);
    EXPECT_EQ(config.memory_bytes, 1024ull << 20);
    EXPECT_TRUE(config.track_dirty_pages);
    EXPECT_EQ(get("/machine-config").body["mem_size_mib"], 1024);

    // PUT needs both; PATCH takes what it is given.
    auto missing = put("/machine-config", R"({"vcpu_count": 4})");
    EXPECT_EQ(missing.status, 400u);
    EXPECT_NE(missing.fault().find("mem_size_mib"), std::string::npos) << missing.fault();
    EXPECT_EQ(patch("/machine-config", R"({"vcpu_count": 3})").status, 204u);
    auto update = vmm.machine_patch();
    ASSERT_TRUE(update);
    EXPECT_EQ(update->vcpu_count, 3u);
    EXPECT_FALSE(update->mem_size_mib);
    EXPECT_EQ(vmm.config().memory_bytes, 1024ull << 20);

    auto zero = patch("/machine-config", R"({"vcpu_count": 0})");
    EXPECT_EQ(zero.status, 400u);
    EXPECT_NE(zero.fault().find("vcpu_count"), std::string::npos) << zero.fault();
}

TEST_F(ConfigHandlers, PutDriveUsesThePathId) {
    auto a = put("/drives/rootfs", R"({"drive_id": "rootfs", "path_on_host": "/img/root.ext4",
                                        "is_root_device": true, "is_read_only": false})");
    EXPECT_EQ(a.status, 204u) << a.fault();
    const auto config = vmm.config();
    const auto* disk = config.find_disk("rootfs");
    ASSERT_NE(disk, nullptr);
    EXPECT_EQ(disk->path, "/img/root.ext4");
    EXPECT_TRUE(disk->is_root_device);
    EXPECT_EQ(a.route, "PUT /drives/{drive_id}");

    auto mismatch = put("/drives/other", R"({"drive_id": "rootfs", "path_on_host": "/x"})");
    EXPECT_EQ(mismatch.status, 400u);
    EXPECT_NE(mismatch.fault().find("does not match"), std::string::npos) << mismatch.fault();
    auto no_path = put("/drives/d2", R"({"drive_id": "d2"})");
    EXPECT_EQ(no_path.status, 400u);
    EXPECT_NE(no_path.fault().find("path_on_host"), std::string::npos) << no_path.fault();
}

TEST_F(ConfigHandlers, PatchDrive) {
    ASSERT_EQ(put("/drives/d1", R"({"drive_id": "d1", "path_on_host": "/a"})").status, 204u);
    vmm.set_state(VmState::Running);
    auto a = patch("/drives/d1", R"({"drive_id": "d1", "path_on_host": "/b",
                                     "rate_limiter": {"ops": {"size": 100, "refill_time": 1000}}})");
    EXPECT_EQ(a.status, 204u) << a.fault();
    auto update = vmm.drive_update();
    ASSERT_TRUE(update);
    EXPECT_EQ(update->path_on_host, "/b");
    ASSERT_TRUE(update->rate_limiter && update->rate_limiter->ops);
    EXPECT_EQ(update->rate_limiter->ops->size, 100u);
    // The fake, as the VMM, refuses a drive it does not have.
    auto unknown = patch("/drives/nope", R"({"drive_id": "nope", "path_on_host": "/b"})");
    EXPECT_EQ(unknown.status, 400u);
    EXPECT_NE(unknown.fault().find("nope"), std::string::npos);
}

TEST_F(ConfigHandlers, NetworkInterfacesPutAndPatch) {
    auto a =
        put("/network-interfaces/eth0",
            R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"})");
    EXPECT_EQ(a.status, 204u) << a.fault();
    const auto config = vmm.config();
    const auto* net = config.find_net("eth0");
    ASSERT_NE(net, nullptr);
    EXPECT_EQ(net->tap, "tap0");
    ASSERT_TRUE(net->mac);
    EXPECT_EQ((*net->mac)[5], 0x02);

    auto bad_mac = put("/network-interfaces/eth1",
                       R"({"iface_id": "eth1", "host_dev_name": "tap1", "guest_mac": "zz"})");
    EXPECT_EQ(bad_mac.status, 400u);
    EXPECT_NE(bad_mac.fault().find("guest_mac"), std::string::npos) << bad_mac.fault();
    EXPECT_EQ(
        put("/network-interfaces/eth9", R"({"iface_id": "eth0", "host_dev_name": "t"})").status,
        400u);

    auto p = patch(
        "/network-interfaces/eth0",
        R"({"iface_id": "eth0", "rx_rate_limiter": {"bandwidth": {"size": 1000000, "refill_time": 100}}})");
    EXPECT_EQ(p.status, 204u) << p.fault();
    auto update = vmm.net_update();
    ASSERT_TRUE(update && update->rx_rate_limiter && update->rx_rate_limiter->bandwidth);
    EXPECT_EQ(update->rx_rate_limiter->bandwidth->size, 1000000u);
    EXPECT_FALSE(update->tx_rate_limiter);
}

TEST_F(ConfigHandlers, EntropyLoggerMetrics) {
    EXPECT_EQ(put("/entropy", "{}").status, 204u);
    EXPECT_TRUE(vmm.config().entropy);
    EXPECT_EQ(put("/entropy", R"({"rate_limiter": 5})").status, 400u);

    auto logger =
        put("/logger", R"({"log_path": "/tmp/log", "level": "debug", "show_level": true})");
    EXPECT_EQ(logger.status, 204u) << logger.fault();
    ASSERT_TRUE(vmm.logger());
    EXPECT_EQ(vmm.logger()->level, LoggerConfig::Level::Debug);
    EXPECT_EQ(put("/logger", R"({"level": "Loud"})").status, 400u);

    EXPECT_EQ(put("/metrics", R"({"metrics_path": "/tmp/metrics.fifo"})").status, 204u);
    ASSERT_TRUE(vmm.metrics());
    EXPECT_EQ(vmm.metrics()->metrics_path, "/tmp/metrics.fifo");
    EXPECT_EQ(put("/metrics", "{}").status, 400u);
}

// ringvisor's extension: PUT /rate-limit-groups/{id} before start, a drive
// naming the group, and io_weight through PATCH /machine-config.
TEST_F(ConfigHandlers, RateLimitGroupsAndIoWeight) {
    auto a = put("/rate-limit-groups/tenant_a",
                 R"({"id": "tenant_a", "rate_limiter": {"bandwidth": {"size": 1048576, "refill_time": 100}}})");
    EXPECT_EQ(a.status, 204u) << a.fault();
    EXPECT_EQ(a.route, "PUT /rate-limit-groups/{id}");
    auto config = vmm.config();
    ASSERT_EQ(config.rate_limit_groups.size(), 1u);
    EXPECT_EQ(config.rate_limit_groups[0].limits.bandwidth->size, 1048576u);
    EXPECT_EQ(put("/drives/d1", R"({"drive_id": "d1", "path_on_host": "/a", "rate_limit_group": "tenant_a"})")
                  .status,
              204u);
    EXPECT_EQ(vmm.config().find_disk("d1")->rate_limit_group, "tenant_a");
    auto mismatch = put("/rate-limit-groups/b", R"({"id": "tenant_a", "rate_limiter": {}})");
    EXPECT_EQ(mismatch.status, 400u);
    EXPECT_NE(mismatch.fault().find("does not match"), std::string::npos) << mismatch.fault();
    EXPECT_EQ(put("/rate-limit-groups/b", R"({"id": "b"})").status, 400u);
    EXPECT_EQ(patch("/machine-config", R"({"io_weight": 250})").status, 204u);
    EXPECT_EQ(vmm.machine_patch()->cpu.io_weight, 250u);
    EXPECT_EQ(patch("/machine-config", R"({"io_weight": 0})").status, 400u);
    vmm.set_state(VmState::Running);
    EXPECT_EQ(put("/rate-limit-groups/tenant_a", R"({"id": "tenant_a", "rate_limiter": {}})").status,
              400u);
}

}  // namespace
}  // namespace rv::api
