// PUT /snapshot/create and /snapshot/load: Firecracker's bodies read
// strictly and handed to the VMM, whose state decides (a fake VMM here).
#include <gtest/gtest.h>

#include "unit/api/handler_call.h"

namespace rv::api {
namespace {

using test_support::HandlerTest;

class SnapshotHandlers : public ::testing::Test, public HandlerTest {};

TEST_F(SnapshotHandlers, CreateNeedsAPausedVm) {
    const char* body = R"({"snapshot_path": "/s/state", "mem_file_path": "/s/mem"})";
    auto early = put("/snapshot/create", body);
    EXPECT_EQ(early.status, 400u);
    vmm.set_state(VmState::Running);
    auto running = put("/snapshot/create", body);
    EXPECT_EQ(running.status, 400u);
    EXPECT_NE(running.fault().find("paused"), std::string::npos) << running.fault();
    vmm.set_state(VmState::Paused);
    auto made = put("/snapshot/create", body);
    EXPECT_EQ(made.status, 204u) << made.fault();
    ASSERT_TRUE(vmm.last_snapshot_create);
    EXPECT_EQ(vmm.last_snapshot_create->snapshot_path, "/s/state");
    EXPECT_EQ(vmm.last_snapshot_create->mem_file_path, "/s/mem");
    EXPECT_EQ(vmm.last_snapshot_create->type, SnapshotCreateParams::Type::Full);
}

TEST_F(SnapshotHandlers, CreateBodies) {
    vmm.set_state(VmState::Paused);
    EXPECT_EQ(put("/snapshot/create", R"({"snapshot_path": "/a"})").status, 400u);
    EXPECT_EQ(put("/snapshot/create", R"({"mem_file_path": "/a"})").status, 400u);
    EXPECT_EQ(put("/snapshot/create",
                  R"({"snapshot_path": "/a", "mem_file_path": "/b", "snapshot_type": "Half"})")
                  .status,
              400u);
    EXPECT_EQ(put("/snapshot/create", R"({"snapshot_path": "/a", "mem_file_path": "/b", "x": 1})")
                  .status,
              400u);
    auto diff = put("/snapshot/create",
                    R"({"snapshot_path": "/a", "mem_file_path": "/b", "snapshot_type": "Diff"})");
    EXPECT_EQ(diff.status, 204u) << diff.fault();
    EXPECT_EQ(vmm.last_snapshot_create->type, SnapshotCreateParams::Type::Diff);
}

TEST_F(SnapshotHandlers, LoadTakesTheMemoryBackendAndOverrides) {
    auto a = put("/snapshot/load", R"({
        "snapshot_path": "/s/state",
        "mem_backend": {"backend_type": "File", "backend_path": "/s/mem"},
        "track_dirty_pages": true, "resume_vm": true, "clock_realtime": true,
        "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap7"}],
        "drive_overrides": [{"drive_id": "rootfs", "path_on_host": "/clone.img"}]})");
    EXPECT_EQ(a.status, 204u) << a.fault();
    ASSERT_TRUE(vmm.last_snapshot_load);
    const auto& p = *vmm.last_snapshot_load;
    EXPECT_EQ(p.snapshot_path, "/s/state");
    EXPECT_EQ(p.mem_file_path, "/s/mem");
    EXPECT_TRUE(p.track_dirty_pages);
    EXPECT_TRUE(p.resume_vm);
    EXPECT_TRUE(p.clock_realtime);
    EXPECT_EQ(p.network_overrides, (std::map<std::string, std::string>{{"eth0", "tap7"}}));
    EXPECT_EQ(p.drive_overrides, (std::map<std::string, std::string>{{"rootfs", "/clone.img"}}));
    EXPECT_EQ(vmm.state(), VmState::Running);
    // A second load into the same process: a VM exists.
    auto again = put("/snapshot/load", R"({"snapshot_path": "/s", "mem_file_path": "/m"})");
    EXPECT_EQ(again.status, 400u);
}

TEST_F(SnapshotHandlers, LoadBodiesRefused) {
    auto refused = [&](const char* body, const char* says) {
        auto a = put("/snapshot/load", body);
        EXPECT_EQ(a.status, 400u) << body;
        EXPECT_NE(a.fault().find(says), std::string::npos) << a.fault();
    };
    refused(R"({"mem_file_path": "/m"})", "snapshot_path");
    refused(R"({"snapshot_path": "/s"})", "mem_backend");
    refused(R"({"snapshot_path": "/s", "mem_file_path": "/m",
               "mem_backend": {"backend_type": "File", "backend_path": "/m"}})", "only one");
    refused(R"({"snapshot_path": "/s", "mem_backend": {"backend_type": "Uffd", "backend_path": "/u"}})",
            "Uffd");
    refused(R"({"snapshot_path": "/s", "mem_file_path": "/m", "vsock_override": {"uds_path": "/v"}})",
            "vsock");
    refused(R"({"snapshot_path": "/s", "mem_file_path": "/m", "clock_realtime": 1})",
            "clock_realtime");
    refused(R"({"snapshot_path": "/s", "mem_file_path": "/m",
               "network_overrides": [{"iface_id": "a", "host_dev_name": "t1"},
                                     {"iface_id": "a", "host_dev_name": "t2"}]})", "twice");
    refused(R"({"snapshot_path": "/s", "mem_file_path": "/m", "network_overrides": {}})", "array");
    EXPECT_FALSE(vmm.last_snapshot_load);
}

}  // namespace
}  // namespace rv::api
