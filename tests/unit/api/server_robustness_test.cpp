// Hostile and broken clients against the API server over a real Unix
// socket: none of them can crash it, make it buffer more than its limits, or
// keep it from serving the next client.
#include <fcntl.h>
#include <sys/resource.h>

#include <thread>
#include <vector>

#include "api/handlers/handlers.h"
#include "support/log_capture.h"
#include "unit/api/server_fixture.h"

namespace rv::api {
namespace {

using namespace std::chrono_literals;
using test_support::ApiServerTest;
using test_support::UnixClient;

// Polls `done` for up to `limit`.
template <typename Fn>
bool eventually(Fn done, std::chrono::milliseconds limit = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

void expect_still_serving(UnixClient c) {
    auto a = c.request("GET", "/");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 200u);
}

TEST_F(ApiServerTest, MalformedRequestsGet400AndTheConnectionCloses) {
    start();
    const std::string garbage[] = {
        "GARBAGE\r\n\r\n",
        std::string("\x00\x01\x02\xff\xfe\r\n\r\n", 9),
        "GET / HTTP/1.1\r\nContent-Length: lots\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "GET /\xff HTTP/1.1\r\nBad Header Line\r\n\r\n",
        "PUT /actions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (const auto& bytes : garbage) {
        auto c = client();
        ASSERT_TRUE(c.send(bytes));
        auto a = c.read_response(2s);
        ASSERT_TRUE(a) << testing::PrintToString(bytes);
        EXPECT_EQ(a->status, 400u) << testing::PrintToString(bytes);
        EXPECT_NE(a->json()["fault_message"].get<std::string>().find("malformed"),
                  std::string::npos);
        EXPECT_TRUE(c.closed_by_server(2s));
    }
    EXPECT_EQ(stats().malformed, std::size(garbage));
    EXPECT_EQ(stats().status_4xx, std::size(garbage));
    expect_still_serving(client());
    EXPECT_TRUE(vmm.calls().size() == 1);  // only the last GET / reached the VMM
}

TEST_F(ApiServerTest, OversizedBodyIs413BeforeItIsRead) {
    start();
    auto c = client();
    // Announces 10 MiB and sends a little: the answer comes from the header alone.
    ASSERT_TRUE(
        c.send("PUT /drives/a HTTP/1.1\r\nContent-Type: application/json\r\n"
               "Content-Length: 10485760\r\n\r\n" +
               std::string(1000, '{')));
    auto a = c.read_response(1s);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 413u);
    EXPECT_NE(a->json()["fault_message"].get<std::string>().find("51200"), std::string::npos);
    EXPECT_TRUE(c.closed_by_server(2s));

    // Chunked, with no length up front: refused once the chunks pass the limit.
    auto chunked = client();
    ASSERT_TRUE(chunked.send("PUT /drives/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
    bool refused = false;
    for (int i = 0; i < 100 && !refused; ++i)
        refused = !chunked.send("1000\r\n" + std::string(0x1000, ' ') + "\r\n");
    auto b = chunked.read_response(2s);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->status, 413u);

    auto header = client();
    ASSERT_TRUE(header.send("GET / HTTP/1.1\r\nX-Filler: " + std::string(20000, 'a') + "\r\n\r\n"));
    auto h = header.read_response(2s);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 431u);

    EXPECT_EQ(stats().too_large, 3u);
    EXPECT_TRUE(vmm.calls().empty());
    expect_still_serving(client());
}

TEST_F(ApiServerTest, BodyAtTheLimitIsServed) {
    start();
    // Valid JSON padded with spaces to exactly the limit.
    std::string body = R"({"kernel_image_path": "/k"})";
    body.resize(ApiServerOptions{}.body_limit, ' ');
    auto a = client().request("PUT", "/boot-source", body);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 204u);
}

TEST_F(ApiServerTest, SilentAndHalfSentClientsDoNotBlockOthers) {
    start();  // the default 10 s request timeout
    auto silent = client();
    auto half_header = client();
    ASSERT_TRUE(half_header.send("GET / HT"));
    auto half_body = client();
    ASSERT_TRUE(half_body.send("PUT /boot-source HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"kern"));
    ASSERT_TRUE(silent.connected());
    for (int i = 0; i < 3; ++i) {
        const auto begin = std::chrono::steady_clock::now();
        auto a = client().request("GET", "/");
        const auto took = std::chrono::steady_clock::now() - begin;
        ASSERT_TRUE(a);
        EXPECT_EQ(a->status, 200u);
        EXPECT_LT(took, 1s);
    }
    // The three hostile ones are still open (the requests' own connections
    // close as their clients go).
    EXPECT_TRUE(eventually([&] { return stats().connections_active == 3; }))
        << stats().connections_active;
}

TEST_F(ApiServerTest, SilentSlowAndIdleClientsTimeOut) {
    start(ApiServerOptions{.request_timeout = 300ms});
    auto silent = client();
    auto half = client();
    ASSERT_TRUE(half.send("PUT /boot-source HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"));
    auto idle = client();  // kept alive after one request, then says nothing
    ASSERT_TRUE(idle.request("GET", "/"));
    EXPECT_TRUE(silent.closed_by_server(2s));
    EXPECT_TRUE(half.closed_by_server(2s));
    EXPECT_TRUE(idle.closed_by_server(2s));

    // One byte every 50 ms: the deadline covers the whole request, so the
    // trickle does not keep extending it.
    auto trickle = client();
    const std::string request = "GET / HTTP/1.1\r\nX-Slow: " + std::string(100, 'z') + "\r\n\r\n";
    const auto begin = std::chrono::steady_clock::now();
    size_t sent = 0;
    while (sent < request.size() && trickle.send(request.substr(sent, 1))) {
        ++sent;
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_LT(sent, request.size());
    EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s);

    EXPECT_TRUE(eventually([&] { return stats().timed_out == 4; })) << stats().timed_out;
    EXPECT_TRUE(eventually([&] { return stats().connections_active == 0; }));
    expect_still_serving(client());
}

TEST_F(ApiServerTest, TwoHundredConcurrentConnections) {
    start();
    std::vector<UnixClient> clients;
    for (int i = 0; i < 200; ++i) {
        clients.push_back(client());
        ASSERT_TRUE(clients.back().connected()) << i;
    }
    for (auto& c : clients) ASSERT_TRUE(c.send("GET / HTTP/1.1\r\n\r\n"));
    for (size_t i = 0; i < clients.size(); ++i) {
        auto a = clients[i].read_response(10s);
        ASSERT_TRUE(a) << i;
        EXPECT_EQ(a->status, 200u);
    }
    auto s = stats();
    EXPECT_EQ(s.connections_accepted, 200u);
    EXPECT_EQ(s.routes["GET /"].requests, 200u);
    clients.clear();
    EXPECT_TRUE(eventually([&] { return stats().connections_active == 0; }));
}

TEST_F(ApiServerTest, ConnectionLimitQueuesNewClientsUntilASlotFrees) {
    start(ApiServerOptions{.max_connections = 2});
    auto first = client();
    auto second = client();
    ASSERT_TRUE(first.request("GET", "/"));
    ASSERT_TRUE(second.request("GET", "/"));
    auto third = client();  // connects: the kernel's backlog holds it
    ASSERT_TRUE(third.connected());
    ASSERT_TRUE(third.send("GET / HTTP/1.1\r\n\r\n"));
    EXPECT_FALSE(third.read_response(300ms));
    first.close();
    auto a = third.read_response(2s);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 200u);
}

// Out of file descriptors, accept() fails with the connection still
// pending: the server must retry later (not spin on it, nor flood the log)
// and serve the connection once a descriptor frees. ctest runs each test in
// a process of its own, so the lowered limit touches no other test.
TEST_F(ApiServerTest, OutOfFileDescriptorsIsRetriedNotSpun) {
    start();
    test::LogCapture log;
    rlimit original{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &original), 0);
    int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(probe, 0);
    ::close(probe);
    rlimit low = original;
    low.rlim_cur = rlim_t(probe) + 40;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    std::vector<UnixClient> clients;
    while (true) {
        UnixClient c = client();
        if (!c.connected()) break;
        clients.push_back(std::move(c));
        ASSERT_LT(clients.size(), 100u);
    }
    // The newest client is in the backlog: the server had no descriptor for it.
    ASSERT_GE(clients.size(), 2u);
    ASSERT_TRUE(clients.back().send("GET / HTTP/1.1\r\n\r\n"));
    EXPECT_TRUE(eventually([&] { return stats().accept_errors > 0; }));
    std::this_thread::sleep_for(500ms);
    const auto errors = stats().accept_errors;
    EXPECT_LE(errors, 10u) << "accept retried without a pause";
    // Several connections may be waiting behind the newest: free enough for all.
    for (size_t i = 0; i + 1 < clients.size(); ++i) clients[i].close();
    auto a = clients.back().read_response(3s);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &original), 0);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, 200u);
    EXPECT_LE(log.count("accept failed"), 6u);
    EXPECT_GE(log.count("accept failed"), 1u);
}

TEST_F(ApiServerTest, ClientDisconnectingMidRequestOrMidResponse) {
    Router router;
    add_api_routes(router, vmm);
    // Far more than a socket buffer, so the server is still writing when
    // the client leaves.
    router.add(http::verb::get, "/big", [](const ApiRequest&) {
        return ok({{"blob", std::string(2 << 20, 'x')}});
    });
    start(std::move(router));

    for (int i = 0; i < 5; ++i) {
        auto mid_request = client();
        ASSERT_TRUE(mid_request.send("PUT /boot-source HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\""));
    }
    for (int i = 0; i < 5; ++i) {
        auto mid_response = client();
        ASSERT_TRUE(mid_response.send("GET /big HTTP/1.1\r\n\r\n"));
        std::this_thread::sleep_for(20ms);
    }
    // The VMM is still working on the request when its client goes.
    vmm.set_delay(100ms);
    for (int i = 0; i < 3; ++i) {
        auto gone = client();
        ASSERT_TRUE(gone.send("PUT /entropy HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"));
    }
    expect_still_serving(client());
    vmm.set_delay(0ms);
    EXPECT_TRUE(eventually([&] { return stats().connections_active == 0; }))
        << stats().connections_active;
    expect_still_serving(client());
}

}  // namespace
}  // namespace rv::api
