// The instance resources (GET /, /version, /vm/config, PUT /actions, PATCH
// /vm) and the routing every resource shares (404, 405 with Allow, path
// parameters), against a fake VMM.
#include <gtest/gtest.h>

#include "unit/api/handler_call.h"

namespace rv::api {
namespace {

using test_support::HandlerTest;

class LifecycleHandlers : public ::testing::Test, public HandlerTest {};

TEST_F(LifecycleHandlers, GetRootIsInstanceInfo) {
    auto a = get("/");
    EXPECT_EQ(a.status, 200u);
    EXPECT_EQ(a.body, (nlohmann::json{{"id", "test-vm"},
                                      {"state", "Not started"},
                                      {"vmm_version", test::FakeVmmApi::kVersion},
                                      {"app_name", "ringvisor"}}));
    vmm.set_state(VmState::Paused);
    EXPECT_EQ(get("/").body["state"], "Paused");
}

TEST_F(LifecycleHandlers, GetVersionCarriesTheVmmVersion) {
    auto a = get("/version");
    EXPECT_EQ(a.status, 200u);
    EXPECT_EQ(a.body, (nlohmann::json{{"firecracker_version", test::FakeVmmApi::kVersion}}));
}

TEST_F(LifecycleHandlers, InstanceStartThenStartAgainIsNotAllowed) {
    auto a = put("/actions", R"({"action_type": "InstanceStart"})");
    EXPECT_EQ(a.status, 204u) << a.fault();
    EXPECT_EQ(vmm.state(), VmState::Running);
    auto again = put("/actions", R"({"action_type": "InstanceStart"})");
    EXPECT_EQ(again.status, 400u);
    EXPECT_NE(again.fault().find("already started"), std::string::npos) << again.fault();
}

TEST_F(LifecycleHandlers, ActionsBadBodies) {
    EXPECT_EQ(put("/actions", R"({"action_type": "Reboot"})").status, 400u);
    auto missing = put("/actions", "{}");
    EXPECT_EQ(missing.status, 400u);
    EXPECT_NE(missing.fault().find("action_type"), std::string::npos) << missing.fault();
    EXPECT_EQ(put("/actions", R"({"action_type": "FlushMetrics", "extra": 1})").status, 400u);
    EXPECT_EQ(put("/actions", R"({"action_type": "FlushMetrics"})").status, 204u);
    // Before start there is no guest to send Ctrl-Alt-Del to.
    EXPECT_EQ(put("/actions", R"({"action_type": "SendCtrlAltDel"})").status, 400u);
}

TEST_F(LifecycleHandlers, PatchVmPausesAndResumes) {
    auto early = patch("/vm", R"({"state": "Paused"})");
    EXPECT_EQ(early.status, 400u);
    EXPECT_NE(early.fault().find("not running"), std::string::npos) << early.fault();
    vmm.set_state(VmState::Running);
    EXPECT_EQ(patch("/vm", R"({"state": "Paused"})").status, 204u);
    EXPECT_EQ(vmm.state(), VmState::Paused);
    EXPECT_EQ(patch("/vm", R"({"state": "Paused"})").status, 400u);
    EXPECT_EQ(patch("/vm", R"({"state": "Resumed"})").status, 204u);
    EXPECT_EQ(vmm.state(), VmState::Running);
    EXPECT_EQ(patch("/vm", R"({"state": "Stopped"})").status, 400u);
    EXPECT_EQ(patch("/vm", "").status, 400u);
}

TEST_F(LifecycleHandlers, GetAccountingOnceStarted) {
    auto early = get("/accounting");
    EXPECT_EQ(early.status, 400u);
    EXPECT_NE(early.fault().find("not started"), std::string::npos) << early.fault();
    vmm.set_state(VmState::Running);
    auto a = get("/accounting");
    EXPECT_EQ(a.status, 200u);
    EXPECT_EQ(a.body["kind"], "current");
    EXPECT_EQ(patch("/accounting", "{}").status, 405u);
}

TEST_F(LifecycleHandlers, GetVmConfigIsTheWholeDocument) {
    ASSERT_EQ(put("/drives/d1", R"({"drive_id": "d1", "path_on_host": "/a"})").status, 204u);
    auto a = get("/vm/config");
    EXPECT_EQ(a.status, 200u);
    EXPECT_EQ(a.body["boot-source"]["kernel_image_path"], "/boot/vmlinuz");
    EXPECT_EQ(a.body["machine-config"]["vcpu_count"], 2);
    ASSERT_EQ(a.body["drives"].size(), 1u);
    EXPECT_EQ(a.body["drives"][0]["drive_id"], "d1");
}

TEST_F(LifecycleHandlers, UnknownPathIs404WithFault) {
    for (const char* path : {"/nope", "/drives", "/drives/", "/drives/a/b", "/vm/config/x", "//",
                             "/machine-config/", "", "relative"}) {
        auto a = get(path);
        EXPECT_EQ(a.status, 404u) << path;
        EXPECT_NE(a.fault().find("no resource"), std::string::npos) << path;
        EXPECT_EQ(a.route, "unmatched");
    }
    EXPECT_TRUE(vmm.calls().empty());
}

TEST_F(LifecycleHandlers, WrongMethodIs405WithAllow) {
    auto a = call(http::verb::delete_, "/machine-config");
    EXPECT_EQ(a.status, 405u);
    EXPECT_EQ(a.allow, "GET, PUT, PATCH");
    EXPECT_NE(a.fault().find("DELETE"), std::string::npos) << a.fault();
    EXPECT_EQ(a.route, "DELETE /machine-config");
    auto drive = get("/drives/x");
    EXPECT_EQ(drive.status, 405u);
    EXPECT_EQ(drive.allow, "PUT, PATCH");
    EXPECT_EQ(put("/", "{}").allow, "GET");
    EXPECT_EQ(call(http::verb::post, "/actions", R"({"action_type": "InstanceStart"})").status,
              405u);
    EXPECT_EQ(vmm.state(), VmState::NotStarted);
}

TEST(ApiRouter, PathParametersAndReplacedRoutes) {
    Router router;
    router.add(http::verb::get, "/a/{x}/b/{y}", [](const ApiRequest& r) {
        return ok({{"x", std::string(r.param("x"))},
                   {"y", std::string(r.param("y"))},
                   {"z", std::string(r.param("z"))}});
    });
    ApiRequest request;
    request.path = "/a/one/b/two";
    auto d = router.dispatch(request);
    EXPECT_EQ(d.response.body, (nlohmann::json{{"x", "one"}, {"y", "two"}, {"z", ""}}));
    EXPECT_EQ(d.route, "GET /a/{x}/b/{y}");
    router.add(http::verb::get, "/a/{x}/b/{y}", [](const ApiRequest&) { return no_content(); });
    EXPECT_EQ(router.dispatch(request).response.status, http::status::no_content);
}

TEST(ApiRouter, ThrowingHandlerIs500) {
    Router router;
    router.add(http::verb::get, "/boom",
               [](const ApiRequest&) -> ApiResponse { throw std::runtime_error("kaput"); });
    ApiRequest request;
    request.path = "/boom";
    auto d = router.dispatch(request);
    EXPECT_EQ(d.response.status, http::status::internal_server_error);
    EXPECT_NE((*d.response.body)["fault_message"].get<std::string>().find("kaput"),
              std::string::npos);
}

TEST(ApiFaults, FaultOfEachErrorKind) {
    EXPECT_EQ(fault(Error("x", 0, ErrorKind::InvalidInput)).status, http::status::bad_request);
    EXPECT_EQ(fault(Error("x", 0, ErrorKind::NotAllowed)).status, http::status::bad_request);
    EXPECT_EQ(fault(Error("x")).status, http::status::internal_server_error);
    EXPECT_EQ(reply({}).status, http::status::no_content);
    // A client's bytes echoed back are not always UTF-8; sending must not throw.
    EXPECT_NO_THROW(
        to_wire(fault(http::status::not_found, "no resource at /\xff\xfe").body.value()));
}

}  // namespace
}  // namespace rv::api
