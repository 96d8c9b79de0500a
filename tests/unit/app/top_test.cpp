// ringvisor top: the rate arithmetic and table over GET /accounting replies,
// and the client against a real API server on a temporary Unix socket.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "api/router.h"
#include "api/response.h"
#include "api/server.h"
#include "app/api_client.h"
#include "app/top.h"
#include "app/top_command.h"

namespace rv::app {
namespace {

using nlohmann::json;

json reply(int64_t pid, uint64_t utc_ms, uint64_t guest, uint64_t overhead, uint64_t steal,
           uint64_t exits, uint64_t read, uint64_t rx) {
    return json{{"vm", "web1"},
                {"pid", pid},
                {"kind", "current"},
                {"utc_ms", utc_ms},
                {"rss_bytes", 64u << 20},
                {"total",
                 {{"guest_cpu_ms", guest},
                  {"vmm_overhead_cpu_ms", overhead},
                  {"steal_ms", steal},
                  {"vcpus", json::array({{{"id", 0}}, {{"id", 1}}})},
                  {"exits", {{"exits", exits}, {"io_exits", exits / 2}}},
                  {"block",
                   {{"rootfs", {{"read_bytes", read}, {"write_bytes", 4096}}},
                    {"data", {{"read_bytes", read}, {"write_bytes", 0}}}}},
                  {"net", {{"eth0", {{"rx_bytes", rx}, {"tx_bytes", 100}}}}}}}};
}

top::Sample sample(const json& j, std::string socket = "/run/ringvisor/web1.sock") {
    auto s = top::parse_sample(j, std::move(socket));
    EXPECT_TRUE(s) << s.error().message();
    return *s;
}

TEST(TopRates, TwoSamplesGiveRatesPerSecondAndPercentOfOneCpu) {
    auto a = sample(reply(7, 10'000, 1'000, 100, 50, 1'000, 0, 0));
    // 2 s later: 3 s of guest CPU (two busy vCPUs 75 %), 0.2 s overhead, 0.5 s steal.
    auto b = sample(reply(7, 12'000, 4'000, 300, 550, 21'000, 1 << 20, 3 << 20));
    top::Row r = top::rates(a, b);
    ASSERT_TRUE(r.has_rates);
    EXPECT_DOUBLE_EQ(r.guest_pct, 150.0);
    EXPECT_DOUBLE_EQ(r.cpu_pct, 160.0);
    EXPECT_DOUBLE_EQ(r.steal_pct, 25.0);
    EXPECT_DOUBLE_EQ(r.exits_ps, 10'000.0);
    EXPECT_DOUBLE_EQ(r.disk_read_bps, double(2 << 20) / 2);  // both drives
    EXPECT_DOUBLE_EQ(r.disk_write_bps, 0.0);
    EXPECT_DOUBLE_EQ(r.net_rx_bps, double(3 << 20) / 2);
    EXPECT_EQ(r.vcpus, 2u);
    EXPECT_EQ(r.pid, 7);
    EXPECT_EQ(r.name, "web1");
}

TEST(TopRates, ARestartedVmOrAFirstSampleHasNoRates) {
    auto a = sample(reply(7, 10'000, 5'000, 100, 50, 1'000, 1 << 20, 0));
    auto b = sample(reply(8, 12'000, 10, 1, 0, 5, 0, 0));  // new pid, counters from 0
    EXPECT_FALSE(top::rates(a, b).has_rates);
    EXPECT_FALSE(top::rates(std::nullopt, b).has_rates);
    auto c = sample(reply(7, 10'000, 5'000, 100, 50, 1'000, 1 << 20, 0));  // same time
    EXPECT_FALSE(top::rates(a, c).has_rates);
}

TEST(TopRates, ACounterThatWentBackwardsCountsZeroNotNegative) {
    auto a = sample(reply(7, 10'000, 5'000, 100, 50, 1'000, 1 << 20, 9'000));
    auto b = sample(reply(7, 11'000, 5'500, 100, 50, 1'000, 0, 1'000));
    top::Row r = top::rates(a, b);
    ASSERT_TRUE(r.has_rates);
    EXPECT_DOUBLE_EQ(r.disk_read_bps, 0.0);
    EXPECT_DOUBLE_EQ(r.net_rx_bps, 0.0);
    EXPECT_DOUBLE_EQ(r.guest_pct, 50.0);
}

TEST(TopRates, RepliesWithoutTotalsAreRefused) {
    auto s = top::parse_sample(json{{"fault_message", "not started"}}, "x.sock");
    ASSERT_FALSE(s);
    EXPECT_TRUE(s.error().is_input());
}

TEST(TopRates, TheDefaultVmIdShowsTheSocketName) {
    json j = reply(7, 1, 0, 0, 0, 0, 0, 0);
    j["vm"] = "ringvisor";
    EXPECT_EQ(top::rates(std::nullopt, sample(j, "/run/ringvisor/db-2.sock")).name, "db-2");
}

TEST(TopTable, SortsByTheChosenColumnAndKeysMapToColumns) {
    std::vector<top::Row> rows(3);
    rows[0].name = "a", rows[0].cpu_pct = 10, rows[0].steal_pct = 30, rows[0].rss = 1;
    rows[1].name = "b", rows[1].cpu_pct = 90, rows[1].steal_pct = 5, rows[1].rss = 3;
    rows[2].name = "c", rows[2].cpu_pct = 50, rows[2].steal_pct = 60, rows[2].rss = 2;
    top::sort_rows(rows, top::SortKey::Cpu);
    EXPECT_EQ(rows[0].name + rows[1].name + rows[2].name, "bca");
    top::sort_rows(rows, *top::sort_key_for('s'));
    EXPECT_EQ(rows[0].name + rows[1].name + rows[2].name, "cab");
    top::sort_rows(rows, *top::sort_key_for('m'));
    EXPECT_EQ(rows[0].name + rows[1].name + rows[2].name, "bca");
    top::sort_rows(rows, *top::parse_sort_key("name"));
    EXPECT_EQ(rows[0].name + rows[1].name + rows[2].name, "abc");
    EXPECT_FALSE(top::parse_sort_key("bogus"));
    EXPECT_FALSE(top::sort_key_for('x'));
}

TEST(TopTable, LinesFitTheWidthAndLongNamesAreCut) {
    top::Row r;
    r.name = "a-very-long-virtual-machine-name-that-does-not-fit";
    r.pid = 4242;
    r.vcpus = 2;
    r.has_rates = true;
    r.cpu_pct = 123.45;
    r.steal_pct = 6.7;
    r.disk_read_bps = 3.5 * 1024 * 1024;
    std::string t = top::format_table({r}, top::SortKey::Cpu, 120, 1, "12:00:00");
    std::istringstream lines(t);
    std::string line;
    std::getline(lines, line);
    EXPECT_NE(line.find("1 VM(s), 1 socket(s) not answering"), std::string::npos) << line;
    EXPECT_NE(line.find("CPU 123.5%"), std::string::npos) << line;
    std::getline(lines, line);
    EXPECT_EQ(line.rfind("VM", 0), 0u);
    std::getline(lines, line);
    EXPECT_LE(line.size(), 120u);
    EXPECT_NE(line.find("a-very-long"), std::string::npos);
    EXPECT_NE(line.find('~'), std::string::npos);  // the cut is marked
    EXPECT_NE(line.find("4242"), std::string::npos);
    EXPECT_NE(line.find("123.5"), std::string::npos);
    EXPECT_NE(line.find("3.5M"), std::string::npos);
    std::string narrow = top::format_table({r}, top::SortKey::Cpu, 60, 0, "12:00:00");
    std::istringstream nl(narrow);
    std::getline(nl, line);  // the header line is not cut
    while (std::getline(nl, line)) EXPECT_LE(line.size(), 60u);
}

TEST(TopTable, HumanRates) {
    EXPECT_EQ(top::human_rate(0), "0");
    EXPECT_EQ(top::human_rate(999), "999");
    EXPECT_EQ(top::human_rate(1536), "1.5K");
    EXPECT_EQ(top::human_rate(12.0 * 1024 * 1024), "12.0M");
    EXPECT_EQ(top::human_rate(3.1 * 1024 * 1024 * 1024), "3.1G");
}

class TopClient : public ::testing::Test {
  protected:
    void SetUp() override {
        char dir[] = "/tmp/rv-top-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
    }
    void TearDown() override {
        m_servers.clear();
        std::error_code ignored;
        std::filesystem::remove_all(m_dir, ignored);
    }
    std::string serve(const std::string& name, json body) {
        api::Router router;
        router.add(api::http::verb::get, "/accounting",
                   [body](const api::ApiRequest&) { return api::ok(body); });
        std::string path = m_dir + "/" + name;
        auto server = api::ApiServer::start(path, std::move(router));
        EXPECT_TRUE(server) << server.error().message();
        m_servers.push_back(std::move(*server));
        return path;
    }
    // A Unix socket bound to `path` (the file exists), not listening yet.
    static int bound_socket(const std::string& path) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << path;
        return fd;
    }
    std::string m_dir;
    std::vector<std::unique_ptr<api::ApiServer>> m_servers;
};

TEST_F(TopClient, GetsAccountingOverTheSocket) {
    std::string path = serve("web1.sock", reply(7, 10'000, 1, 2, 3, 4, 5, 6));
    auto r = http_get_unix(path, "/accounting", std::chrono::milliseconds(2000));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 200u);
    auto s = top::parse_sample(json::parse(r->body), path);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->pid, 7);
    EXPECT_EQ(s->disk_read, 10u);
    auto missing = http_get_unix(path, "/nothing-here", std::chrono::milliseconds(2000));
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404u);
}

TEST_F(TopClient, AStaleSocketIsRefusedQuickly) {
    // A socket file nobody listens on, as a killed VMM leaves behind.
    std::string path = m_dir + "/stale.sock";
    ::close(bound_socket(path));
    auto r = http_get_unix(path, "/accounting", std::chrono::milliseconds(2000));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().os_errno(), ECONNREFUSED) << r.error().message();
    auto none = http_get_unix(m_dir + "/none.sock", "/accounting", std::chrono::milliseconds(2000));
    ASSERT_FALSE(none);
}

TEST_F(TopClient, AVmmThatDoesNotAnswerTimesOut) {
    // Listens but never accepts or answers: the client must give up.
    std::string path = m_dir + "/hung.sock";
    int fd = bound_socket(path);
    ASSERT_EQ(::listen(fd, 4), 0);
    auto t0 = std::chrono::steady_clock::now();
    auto r = http_get_unix(path, "/accounting", std::chrono::milliseconds(300));
    auto took = std::chrono::steady_clock::now() - t0;
    ::close(fd);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().os_errno(), ETIMEDOUT) << r.error().message();
    EXPECT_LT(took, std::chrono::seconds(2));
}

TEST_F(TopClient, TheRunDirectoryScanFindsSocketsOnly) {
    serve("b.sock", reply(1, 1, 0, 0, 0, 0, 0, 0));
    serve("a.sock", reply(2, 1, 0, 0, 0, 0, 0, 0));
    std::ofstream(m_dir + "/notes.txt") << "not a socket";
    auto found = find_sockets(m_dir, {m_dir + "/a.sock", "/elsewhere/x.sock"});
    ASSERT_EQ(found.size(), 3u);
    EXPECT_EQ(found[0], m_dir + "/a.sock");
    EXPECT_EQ(found[1], m_dir + "/b.sock");
    EXPECT_EQ(found[2], "/elsewhere/x.sock");
    EXPECT_TRUE(find_sockets(m_dir + "/missing", {}).empty());
}

}  // namespace
}  // namespace rv::app
