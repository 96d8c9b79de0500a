// ringvisor top against real API servers on temporary Unix sockets: the
// client (timeouts, stale sockets, many sockets at once), one refresh over
// a run directory of live, stale, hung, unstarted and foreign sockets, VMs
// coming, going and restarting, and the batch command end to end.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "api/response.h"
#include "api/server.h"
#include "app/api_client.h"
#include "app/top_command.h"
#include "support/fake_vmm_api.h"

namespace rv::app {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A VM whose counters grow by the same amount at every GET, 1 s of its
// clock apart: 50 % guest CPU, 10 % overhead, 1 MiB/s read, 100 exits/s.
json accounting(const std::string& vm, int64_t pid, uint64_t n) {
    return json{{"vm", vm},
                {"pid", pid},
                {"kind", "current"},
                {"utc_ms", 1'000'000 + 1'000 * n},
                {"rss_bytes", 32u << 20},
                {"total",
                 {{"guest_cpu_ms", 500 * n},
                  {"vmm_overhead_cpu_ms", 100 * n},
                  {"steal_ms", 0},
                  {"vcpus", json::array({{{"id", 0}}})},
                  {"exits", {{"exits", 100 * n}}},
                  {"block", {{"rootfs", {{"read_bytes", (1u << 20) * n}, {"write_bytes", 0}}}}},
                  {"net", json::object()}}}};
}

class TopSampling : public ::testing::Test {
  protected:
    void SetUp() override {
        char dir[] = "/tmp/rv-top-XXXXXX";  // a socket path must fit in 108 bytes
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
    }
    void TearDown() override {
        m_servers.clear();
        for (int fd : m_fds) ::close(fd);
        std::error_code ignored;
        std::filesystem::remove_all(m_dir, ignored);
    }
    std::string path(const std::string& name) const { return m_dir + "/" + name; }

    // A VMM whose GET /accounting is `vm` with growing counters.
    std::string serve_vm(const std::string& name, const std::string& vm, int64_t pid) {
        auto calls = std::make_shared<std::atomic<uint64_t>>(0);
        api::Router router;
        router.add(api::http::verb::get, "/accounting",
                   [=](const api::ApiRequest&) { return api::ok(accounting(vm, pid, ++*calls)); });
        return serve(name, std::move(router));
    }
    std::string serve(const std::string& name, api::Router router) {
        auto server = api::ApiServer::start(path(name), std::move(router));
        EXPECT_TRUE(server) << server.error().message();
        if (server) m_servers[name] = std::move(*server);
        return path(name);
    }
    // A VMM still waiting for InstanceStart (the full API on a fake VMM).
    std::string serve_unstarted(const std::string& name) {
        auto server = api::ApiServer::start(path(name), m_unstarted);
        EXPECT_TRUE(server) << server.error().message();
        if (server) m_servers[name] = std::move(*server);
        return path(name);
    }
    // A socket file nobody listens on, as a killed VMM leaves behind.
    std::string stale(const std::string& name) {
        ::close(bound(name));
        return path(name);
    }
    // Listens, never accepts: a hung VMM.
    std::string hung(const std::string& name) {
        int fd = bound(name);
        EXPECT_EQ(::listen(fd, 4), 0);
        m_fds.push_back(fd);
        return path(name);
    }
    int bound(const std::string& name) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path(name).c_str());
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << name;
        return fd;
    }

    std::string m_dir;
    test::FakeVmmApi m_unstarted;
    std::map<std::string, std::unique_ptr<api::ApiServer>> m_servers;
    std::vector<int> m_fds;
};

const top::Row* find_row(const TopSnapshot& snap, const std::string& name) {
    for (const auto& r : snap.rows)
        if (r.name == name) return &r;
    return nullptr;
}

TEST_F(TopSampling, TheClientGetsAccountingOverTheSocket) {
    std::string sock = serve_vm("web1.sock", "web1", 7);
    auto r = http_get_unix(sock, "/accounting", 2000ms);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200u);
    auto s = top::parse_sample(json::parse(r->body), sock);
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_EQ(s->vm, "web1");
    EXPECT_EQ(s->pid, 7);
    EXPECT_EQ(s->guest_ms, 500u);
    EXPECT_EQ(s->disk_read, 1u << 20);
    auto missing = http_get_unix(sock, "/nothing-here", 2000ms);
    ASSERT_TRUE(missing) << missing.error().message();
    EXPECT_EQ(missing->status, 404u);
}

TEST_F(TopSampling, AStaleSocketIsRefusedAndAMissingOneIsNotFound) {
    auto r = http_get_unix(stale("stale.sock"), "/accounting", 2000ms);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().os_errno(), ECONNREFUSED) << r.error().message();
    auto none = http_get_unix(path("none.sock"), "/accounting", 2000ms);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().os_errno(), ENOENT) << none.error().message();
}

TEST_F(TopSampling, AHungVmmTimesOut) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = http_get_unix(hung("hung.sock"), "/accounting", 300ms);
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().os_errno(), ETIMEDOUT) << r.error().message();
    EXPECT_GE(took, 290ms);
    EXPECT_LT(took, 2s);
}

TEST_F(TopSampling, ManySocketsAreAskedAtOnceAndAnsweredInOrder) {
    std::vector<std::string> socks{hung("h1.sock"), hung("h2.sock"), serve_vm("ok.sock", "ok", 1),
                                   hung("h3.sock"), hung("h4.sock")};
    auto t0 = std::chrono::steady_clock::now();
    auto replies = http_get_unix_all(socks, "/accounting", 300ms);
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_EQ(replies.size(), 5u);
    EXPECT_LT(took, 1000ms);  // one timeout, not four in a row (1.2 s)
    for (size_t i : {0, 1, 3, 4}) {
        ASSERT_FALSE(replies[i]) << i;
        EXPECT_EQ(replies[i].error().os_errno(), ETIMEDOUT);
    }
    ASSERT_TRUE(replies[2]) << replies[2].error().message();
    EXPECT_EQ(replies[2]->status, 200u);
    // With two connections at a time, the four hung ones take two timeouts.
    t0 = std::chrono::steady_clock::now();
    replies = http_get_unix_all(socks, "/accounting", 300ms, 2);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 590ms);
    EXPECT_TRUE(replies[2] && replies[2]->status == 200u);
}

TEST_F(TopSampling, ARefreshShowsLiveVmsAndCountsTheRestByWhy) {
    serve_vm("web1.sock", "web1", 7);
    serve_vm("db.sock", "ringvisor", 8);  // the default id: named after its socket
    stale("stale.sock");
    hung("hung.sock");
    serve_unstarted("waiting.sock");
    api::Router foreign;
    foreign.add(api::http::verb::get, "/accounting", [](const api::ApiRequest&) {
        return api::ok(json{{"hello", "world"}});
    });
    serve("foreign.sock", std::move(foreign));
    std::ofstream(path("notes.txt")) << "not a socket";

    auto socks = find_sockets(m_dir, {});
    ASSERT_EQ(socks.size(), 6u);
    EXPECT_EQ(socks.front(), path("db.sock"));  // sorted
    auto t0 = std::chrono::steady_clock::now();
    TopSnapshot first = sample_vms(socks, {}, 300ms);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);
    ASSERT_EQ(first.rows.size(), 2u);
    EXPECT_EQ(first.rows[0].name, "db");
    EXPECT_EQ(first.rows[1].name, "web1");
    EXPECT_FALSE(first.rows[1].has_rates);  // one sample: no rates yet
    EXPECT_EQ(first.skipped.stale, 1u);
    EXPECT_EQ(first.skipped.not_answering, 1u);
    EXPECT_EQ(first.skipped.not_started, 1u);
    EXPECT_EQ(first.skipped.bad_reply, 1u);
    EXPECT_EQ(first.skipped.total(), 4u);
    EXPECT_EQ(first.samples.size(), 2u);

    TopSnapshot second = sample_vms(socks, first.samples, 300ms);
    const top::Row* web1 = find_row(second, "web1");
    ASSERT_NE(web1, nullptr);
    ASSERT_TRUE(web1->has_rates);
    EXPECT_DOUBLE_EQ(web1->guest_pct, 50.0);
    EXPECT_DOUBLE_EQ(web1->overhead_pct, 10.0);
    EXPECT_DOUBLE_EQ(web1->cpu_pct, 60.0);
    EXPECT_DOUBLE_EQ(web1->disk_read_bps, double(1 << 20));
    EXPECT_DOUBLE_EQ(web1->exits_ps, 100.0);
    EXPECT_EQ(web1->pid, 7);
    EXPECT_EQ(web1->vcpus, 1u);
}

TEST_F(TopSampling, TheFullApiOnAStartedVmGivesRates) {
    test::FakeVmmApi vmm;  // its record grows as a busy VM's: 75 % guest, 5 % overhead
    vmm.set_state(VmState::Running);
    auto server = api::ApiServer::start(path("busy.sock"), vmm);
    ASSERT_TRUE(server) << server.error().message();
    TopSnapshot first = sample_vms({path("busy.sock")}, {}, 1000ms);
    std::this_thread::sleep_for(200ms);
    TopSnapshot second = sample_vms({path("busy.sock")}, first.samples, 1000ms);
    ASSERT_EQ(second.rows.size(), 1u);
    const top::Row& r = second.rows[0];
    EXPECT_EQ(r.name, "test-vm");
    EXPECT_EQ(r.pid, ::getpid());
    EXPECT_EQ(r.vcpus, 2u);
    ASSERT_TRUE(r.has_rates);
    EXPECT_NEAR(r.cpu_pct, 80.0, 3.0);
    EXPECT_NEAR(r.steal_pct, 2.0, 1.0);
    EXPECT_NEAR(r.disk_read_bps, 2'000'000.0, 60'000.0);
    EXPECT_NEAR(r.exits_ps, 12'000.0, 400.0);
    server->reset();
}

TEST_F(TopSampling, VmsComeGoAndRestartBetweenRefreshes) {
    serve_vm("a.sock", "a", 1);
    serve_vm("b.sock", "b", 2);
    TopSnapshot first = sample_vms(find_sockets(m_dir, {}), {}, 500ms);
    ASSERT_EQ(first.rows.size(), 2u);

    m_servers.erase("a.sock");   // a ended (its server removes the socket)
    serve_vm("c.sock", "c", 3);  // c started
    m_servers.erase("b.sock");   // b restarted behind the same socket
    serve_vm("b.sock", "b", 22);
    TopSnapshot second = sample_vms(find_sockets(m_dir, {}), first.samples, 500ms);
    ASSERT_EQ(second.rows.size(), 2u);
    EXPECT_EQ(find_row(second, "a"), nullptr);
    ASSERT_NE(find_row(second, "b"), nullptr);
    ASSERT_NE(find_row(second, "c"), nullptr);
    EXPECT_FALSE(find_row(second, "b")->has_rates);  // a new pid: its counters start over
    EXPECT_EQ(find_row(second, "b")->pid, 22);
    EXPECT_FALSE(find_row(second, "c")->has_rates);
    EXPECT_EQ(second.skipped.total(), 0u);

    TopSnapshot third = sample_vms(find_sockets(m_dir, {}), second.samples, 500ms);
    EXPECT_TRUE(find_row(third, "b")->has_rates);
    EXPECT_DOUBLE_EQ(find_row(third, "b")->cpu_pct, 60.0);
}

TEST_F(TopSampling, VmsWithTheSameIdAreToldApartByTheirSockets) {
    serve_vm("one.sock", "web", 1);
    serve_vm("two.sock", "web", 2);
    serve_vm("db.sock", "db", 3);
    TopSnapshot snap = sample_vms(find_sockets(m_dir, {}), {}, 500ms);
    ASSERT_EQ(snap.rows.size(), 3u);
    EXPECT_EQ(snap.rows[0].name, "db");
    EXPECT_EQ(snap.rows[1].name, "web (one.sock)");
    EXPECT_EQ(snap.rows[2].name, "web (two.sock)");
}

TEST_F(TopSampling, TheScanAddsNamedSocketsOnce) {
    serve_vm("b.sock", "b", 1);
    serve_vm("a.sock", "a", 2);
    auto found = find_sockets(m_dir, {path("a.sock"), "/elsewhere/x.sock"});
    EXPECT_EQ(found,
              (std::vector<std::string>{path("a.sock"), path("b.sock"), "/elsewhere/x.sock"}));
    EXPECT_TRUE(find_sockets(path("missing"), {}).empty());
    EXPECT_EQ(find_sockets("", {"/x.sock"}), std::vector<std::string>{"/x.sock"});
}

TEST_F(TopSampling, BatchModePrintsOneTablePerIteration) {
    serve_vm("web1.sock", "web1", 7);
    stale("old.sock");
    TopOptions options{
        .run_dir = m_dir, .interval_s = 0.1, .sort = "name", .batch = true, .iterations = 2};
    ::testing::internal::CaptureStdout();
    int status = run_top(options);
    std::string out = ::testing::internal::GetCapturedStdout();
    EXPECT_EQ(status, 0);
    size_t tables = 0;
    for (size_t at = out.find("ringvisor top - "); at != std::string::npos;
         at = out.find("ringvisor top - ", at + 1))
        ++tables;
    EXPECT_EQ(tables, 2u) << out;
    EXPECT_NE(out.find("1 VM (skipped: 1 stale) - sort: name"), std::string::npos) << out;
    // Both tables have rates: the first is printed after a second sample.
    std::vector<std::string> rows;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);)
        if (line.starts_with("web1 ")) rows.push_back(line);
    ASSERT_EQ(rows.size(), 2u) << out;
    for (const auto& row : rows) {
        EXPECT_NE(row.find(" 60.0 "), std::string::npos) << row;  // CPU %
        EXPECT_EQ(row.find(" - "), std::string::npos) << row;
    }

    options.sort = "bogus";
    EXPECT_EQ(run_top(options), 2);
    options.sort = "cpu";
    options.run_dir = path("missing");
    EXPECT_EQ(run_top(options), 2);
}

}  // namespace
}  // namespace rv::app
