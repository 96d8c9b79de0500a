// The API server over a real Unix socket: the socket file's life, requests
// and answers on the wire (keep-alive, pipelining, 404/405, HTTP/1.0,
// Expect: 100-continue) and the stats it counts.
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "unit/api/server_fixture.h"

namespace rv::api {
namespace {

using test_support::ApiServerTest;
using test_support::UnixClient;

TEST_F(ApiServerTest, ServesGetRootAndRemovesTheSocketWhenDestroyed) {
    start();
    struct stat st {};
    ASSERT_EQ(::lstat(m_path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    auto c = client();
    ASSERT_TRUE(c.connected());
    auto a = c.request("GET", "/");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 200u);
    EXPECT_EQ(a->header("Content-Type"), "application/json");
    EXPECT_EQ(a->json()["state"], "Not started");
    EXPECT_EQ(a->json()["id"], "test-vm");
    stop();
    EXPECT_NE(::lstat(m_path.c_str(), &st), 0);
    EXPECT_FALSE(client().connected());
}

TEST_F(ApiServerTest, StaleSocketIsReplacedAndOtherFilesAreRefused) {
    // A socket file nobody listens on, as a crashed VMM leaves behind.
    {
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, m_path.c_str(), sizeof(addr.sun_path) - 1);
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
        ::close(fd);
    }
    start();
    auto served = client().request("GET", "/version");
    ASSERT_TRUE(served);
    EXPECT_EQ(served->status, 200u);
    // A second server on the same path takes it over; the first one's
    // destructor then leaves the second one's socket alone.
    auto second = ApiServer::start(m_path, vmm);
    ASSERT_TRUE(second) << second.error().message();
    stop();
    EXPECT_TRUE(client().request("GET", "/version"));
    second->reset();

    std::ofstream(m_path) << "not a socket";
    auto refused = ApiServer::start(m_path, vmm);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().kind(), ErrorKind::InvalidInput);
    EXPECT_NE(refused.error().message().find("not a socket"), std::string::npos);
    std::ifstream kept(m_path);
    std::string text;
    std::getline(kept, text);
    EXPECT_EQ(text, "not a socket");

    auto missing_dir = ApiServer::start(m_dir + "/no/such/dir/api.sock", vmm);
    ASSERT_FALSE(missing_dir);
    EXPECT_EQ(missing_dir.error().kind(), ErrorKind::InvalidInput);
    auto too_long = ApiServer::start("/tmp/" + std::string(200, 'x'), vmm);
    ASSERT_FALSE(too_long);
    EXPECT_EQ(too_long.error().kind(), ErrorKind::InvalidInput);
}

// A client that waits for the socket file and then connects (as
// Firecracker's clients do) is never refused: the file appears only once
// the server listens, and no temporary name is left beside it.
TEST_F(ApiServerTest, TheSocketFileAppearsOnlyWhenListening) {
    for (int round = 0; round < 2000; ++round) {
        std::atomic<int> refused{0};
        std::atomic<bool> done{false};
        std::thread watcher([&] {
            struct stat st {};
            while (::lstat(m_path.c_str(), &st) != 0)
                if (done) return;
            int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
            sockaddr_un addr{};
            addr.sun_family = AF_UNIX;
            std::strncpy(addr.sun_path, m_path.c_str(), sizeof(addr.sun_path) - 1);
            if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) ++refused;
            ::close(fd);
        });
        auto server = ApiServer::start(m_path, vmm);
        ASSERT_TRUE(server) << server.error().message();
        done = true;
        watcher.join();
        EXPECT_EQ(refused.load(), 0) << "round " << round;
        const std::string dir = m_path.substr(0, m_path.rfind('/'));
        for (const auto& e : std::filesystem::directory_iterator(dir))
            EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
        server->reset();
    }
}

TEST_F(ApiServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
    start();
    auto c = client();
    auto put = c.request("PUT", "/boot-source", R"({"kernel_image_path": "/k"})");
    ASSERT_TRUE(put);
    EXPECT_EQ(put->status, 204u);
    EXPECT_TRUE(put->body.empty());
    auto bad = c.request("PUT", "/machine-config", R"({"vcpu_count": 0, "mem_size_mib": 1})");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400u);
    EXPECT_NE(bad->json()["fault_message"].get<std::string>().find("vcpu_count"),
              std::string::npos);
    // A 400 from a handler keeps the connection: the request itself was whole.
    for (int i = 0; i < 5; ++i) {
        auto a = c.request("GET", "/machine-config");
        ASSERT_TRUE(a) << i;
        EXPECT_EQ(a->status, 200u);
    }
    EXPECT_EQ(stats().connections_accepted, 1u);
    ASSERT_TRUE(vmm.boot());
    EXPECT_EQ(vmm.boot()->kernel_image_path, "/k");
}

TEST_F(ApiServerTest, PipelinedRequestsAreAnsweredInOrder) {
    start();
    auto c = client();
    ASSERT_TRUE(c.send(
        "GET /version HTTP/1.1\r\n\r\n"
        "PUT /actions HTTP/1.1\r\nContent-Length: 33\r\n\r\n{\"action_type\": \"InstanceStart\"}\n"
        "GET / HTTP/1.1\r\n\r\n"));
    auto first = c.read_response();
    auto second = c.read_response();
    auto third = c.read_response();
    ASSERT_TRUE(first && second && third);
    EXPECT_EQ(first->json()["firecracker_version"], test::FakeVmmApi::kVersion);
    EXPECT_EQ(second->status, 204u);
    EXPECT_EQ(third->json()["state"], "Running");
}

TEST_F(ApiServerTest, NotFoundAndMethodNotAllowedOnTheWire) {
    start();
    auto c = client();
    auto missing = c.request("GET", "/balloon");
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404u);
    EXPECT_TRUE(missing->json().contains("fault_message"));
    auto wrong = c.request("DELETE", "/drives/root");
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 405u);
    EXPECT_EQ(wrong->header("Allow"), "PUT, PATCH");
    // HEAD: the 405's length but not its body, so the connection stays in step.
    ASSERT_TRUE(c.send("HEAD / HTTP/1.1\r\n\r\n"));
    auto head = c.read_response(std::chrono::seconds(2), /*head=*/true);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 405u);
    EXPECT_EQ(head->header("Allow"), "GET");
    EXPECT_TRUE(head->body.empty());
    // The query string is not part of the path.
    auto query = c.request("GET", "/version?verbose=1");
    ASSERT_TRUE(query);
    EXPECT_EQ(query->status, 200u);
}

TEST_F(ApiServerTest, Http10AndConnectionCloseEndTheConnection) {
    start();
    auto old = client();
    ASSERT_TRUE(old.send("GET / HTTP/1.0\r\n\r\n"));
    auto a = old.read_response();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 200u);
    EXPECT_TRUE(old.closed_by_server(std::chrono::seconds(2)));

    auto c = client();
    auto b = c.request("GET", "/", {}, /*keep_alive=*/false);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->status, 200u);
    EXPECT_TRUE(c.closed_by_server(std::chrono::seconds(2)));
}

TEST_F(ApiServerTest, ExpectContinueGetsAnInterimAnswer) {
    start();
    auto c = client();
    const std::string body = R"({"kernel_image_path": "/boot/k"})";
    ASSERT_TRUE(
        c.send("PUT /boot-source HTTP/1.1\r\nContent-Type: application/json\r\n"
               "Expect: 100-continue\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n"));
    auto interim = c.read_response(std::chrono::seconds(2));
    ASSERT_TRUE(interim);
    EXPECT_EQ(interim->status, 100u);
    ASSERT_TRUE(c.send(body));
    auto a = c.read_response();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 204u);
    EXPECT_EQ(vmm.boot()->kernel_image_path, "/boot/k");
}

TEST_F(ApiServerTest, ChunkedBodiesAreAccepted) {
    start();
    auto c = client();
    ASSERT_TRUE(
        c.send("PUT /logger HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\n{\"lev\r\n"
               "d\r\nel\": \"Debug\"}\r\n"
               "0\r\n\r\n"));
    auto a = c.read_response();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 204u) << a->body;
    ASSERT_TRUE(vmm.logger());
    EXPECT_EQ(vmm.logger()->level, LoggerConfig::Level::Debug);
}

TEST_F(ApiServerTest, StatsCountRoutesAndStatusClasses) {
    start();
    auto c = client();
    ASSERT_TRUE(c.request("GET", "/"));
    ASSERT_TRUE(c.request("GET", "/"));
    ASSERT_TRUE(c.request("PUT", "/drives/a", R"({"drive_id": "b", "path_on_host": "/x"})"));
    ASSERT_TRUE(c.request("PUT", "/drives/c", R"({"drive_id": "c", "path_on_host": "/x"})"));
    ASSERT_TRUE(c.request("GET", "/nowhere/at/all"));
    vmm.fail_next(Error("boom"));
    ASSERT_TRUE(c.request("PUT", "/entropy", "{}"));
    auto s = stats();
    EXPECT_EQ(s.routes["GET /"], (ApiStats::RouteCount{2, 0}));
    EXPECT_EQ(s.routes["PUT /drives/{drive_id}"], (ApiStats::RouteCount{2, 1}));
    EXPECT_EQ(s.routes["unmatched"], (ApiStats::RouteCount{1, 1}));
    EXPECT_EQ(s.routes["PUT /entropy"], (ApiStats::RouteCount{1, 1}));
    EXPECT_EQ(s.status_2xx, 3u);
    EXPECT_EQ(s.status_4xx, 2u);
    EXPECT_EQ(s.status_5xx, 1u);
    EXPECT_EQ(s.connections_active, 1u);
    auto j = s.to_json();
    EXPECT_EQ(j["routes"]["GET /"]["requests"], 2);
    EXPECT_EQ(j["status_5xx"], 1);
}

}  // namespace
}  // namespace rv::api
