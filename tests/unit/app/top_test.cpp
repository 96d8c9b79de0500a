// ringvisor top: the rate arithmetic over GET /accounting replies, sorting,
// and the table (columns, width, height, names). The client and the
// sampling against real API servers are in top_sampling_test.cpp.
#include "app/top.h"

#include <gtest/gtest.h>

#include <sstream>

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
    return s ? *s : top::Sample{};
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

TEST(TopRates, TwoSamplesGiveRatesPerSecondAndPercentOfOneCpu) {
    auto a = sample(reply(7, 10'000, 1'000, 100, 50, 1'000, 0, 0));
    // 2 s later: 3 s of guest CPU (two vCPUs 75 % busy), 0.2 s overhead, 0.5 s steal.
    auto b = sample(reply(7, 12'000, 4'000, 300, 550, 21'000, 1 << 20, 3 << 20));
    top::Row r = top::rates(a, b);
    ASSERT_TRUE(r.has_rates);
    EXPECT_DOUBLE_EQ(r.guest_pct, 150.0);
    EXPECT_DOUBLE_EQ(r.overhead_pct, 10.0);
    EXPECT_DOUBLE_EQ(r.cpu_pct, 160.0);
    EXPECT_DOUBLE_EQ(r.steal_pct, 25.0);
    EXPECT_DOUBLE_EQ(r.exits_ps, 10'000.0);
    EXPECT_DOUBLE_EQ(r.disk_read_bps, double(2 << 20) / 2);  // both drives
    EXPECT_DOUBLE_EQ(r.disk_write_bps, 0.0);
    EXPECT_DOUBLE_EQ(r.net_rx_bps, double(3 << 20) / 2);
    EXPECT_DOUBLE_EQ(r.net_tx_bps, 0.0);
    EXPECT_EQ(r.vcpus, 2u);
    EXPECT_EQ(r.pid, 7);
    EXPECT_EQ(r.rss, 64u << 20);
    EXPECT_EQ(r.name, "web1");
}

TEST(TopRates, ARestartedVmOrAFirstSampleHasNoRates) {
    auto a = sample(reply(7, 10'000, 5'000, 100, 50, 1'000, 1 << 20, 0));
    auto b = sample(reply(8, 12'000, 10, 1, 0, 5, 0, 0));  // new pid, counters from 0
    top::Row restarted = top::rates(a, b);
    EXPECT_FALSE(restarted.has_rates);
    EXPECT_EQ(restarted.pid, 8);
    EXPECT_DOUBLE_EQ(restarted.cpu_pct, 0.0);
    EXPECT_FALSE(top::rates(std::nullopt, b).has_rates);
    auto c = sample(reply(7, 10'000, 5'000, 100, 50, 1'000, 1 << 20, 0));  // no time passed
    EXPECT_FALSE(top::rates(a, c).has_rates);
}

TEST(TopRates, ACounterThatWentBackwardsCountsZeroNotNegative) {
    // Same pid, yet the disk, net, steal and exit counters went back (a
    // device re-created): no negative rates, the others still count.
    auto a = sample(reply(7, 10'000, 5'000, 100, 500, 9'000, 1 << 20, 9'000));
    auto b = sample(reply(7, 11'000, 5'500, 50, 40, 10, 0, 1'000));
    top::Row r = top::rates(a, b);
    ASSERT_TRUE(r.has_rates);
    EXPECT_DOUBLE_EQ(r.disk_read_bps, 0.0);
    EXPECT_DOUBLE_EQ(r.net_rx_bps, 0.0);
    EXPECT_DOUBLE_EQ(r.steal_pct, 0.0);
    EXPECT_DOUBLE_EQ(r.exits_ps, 0.0);
    EXPECT_DOUBLE_EQ(r.overhead_pct, 0.0);
    EXPECT_DOUBLE_EQ(r.guest_pct, 50.0);
    EXPECT_DOUBLE_EQ(r.cpu_pct, 50.0);
}

TEST(TopRates, RepliesWithoutTotalsAreRefused) {
    auto s = top::parse_sample(json{{"fault_message", "not started"}}, "x.sock");
    ASSERT_FALSE(s);
    EXPECT_TRUE(s.error().is_input());
    EXPECT_FALSE(top::parse_sample(json::parse("[1, 2]"), "x.sock"));
    // Fields of the wrong type count as absent, not as garbage.
    json odd = reply(7, 1, 0, 0, 0, 0, 0, 0);
    odd["total"]["guest_cpu_ms"] = "lots";
    odd["total"]["block"] = 3;
    auto s2 = top::parse_sample(odd, "x.sock");
    ASSERT_TRUE(s2);
    EXPECT_EQ(s2->guest_ms, 0u);
    EXPECT_EQ(s2->disk_read, 0u);
}

TEST(TopRates, TheDefaultVmIdShowsTheSocketName) {
    json j = reply(7, 1, 0, 0, 0, 0, 0, 0);
    j["vm"] = "ringvisor";  // run --id's default
    EXPECT_EQ(top::rates(std::nullopt, sample(j, "/run/ringvisor/db-2.sock")).name, "db-2");
}

std::vector<top::Row> three_rows() {
    std::vector<top::Row> rows(3);
    for (auto& r : rows) r.has_rates = true;
    rows[0].name = "a", rows[0].cpu_pct = 10, rows[0].steal_pct = 30, rows[0].rss = 1;
    rows[0].disk_read_bps = 5, rows[0].net_tx_bps = 9, rows[0].exits_ps = 2;
    rows[1].name = "b", rows[1].cpu_pct = 90, rows[1].steal_pct = 5, rows[1].rss = 3;
    rows[1].disk_write_bps = 7, rows[1].net_rx_bps = 1, rows[1].exits_ps = 3;
    rows[2].name = "c", rows[2].cpu_pct = 50, rows[2].steal_pct = 60, rows[2].rss = 2;
    rows[2].disk_read_bps = 1, rows[2].net_rx_bps = 4, rows[2].exits_ps = 1;
    return rows;
}

std::string order(const std::vector<top::Row>& rows) {
    std::string s;
    for (const auto& r : rows) s += r.name;
    return s;
}

TEST(TopTable, SortsByTheChosenColumnAndKeysMapToColumns) {
    auto rows = three_rows();
    top::sort_rows(rows, top::SortKey::Cpu);
    EXPECT_EQ(order(rows), "bca");
    top::sort_rows(rows, *top::sort_key_for('s'));
    EXPECT_EQ(order(rows), "cab");
    top::sort_rows(rows, *top::sort_key_for('d'));  // read + write
    EXPECT_EQ(order(rows), "bac");
    top::sort_rows(rows, *top::sort_key_for('n'));  // rx + tx
    EXPECT_EQ(order(rows), "acb");
    top::sort_rows(rows, *top::sort_key_for('e'));
    EXPECT_EQ(order(rows), "bac");
    top::sort_rows(rows, *top::sort_key_for('r'));
    EXPECT_EQ(order(rows), "bca");
    EXPECT_EQ(top::sort_key_for('m'), top::SortKey::Rss);
    top::sort_rows(rows, *top::sort_key_for('N'));
    EXPECT_EQ(order(rows), "abc");
    EXPECT_EQ(top::parse_sort_key("steal"), top::SortKey::Steal);
    EXPECT_EQ(top::parse_sort_key("name"), top::SortKey::Name);
    EXPECT_FALSE(top::parse_sort_key("bogus"));
    EXPECT_FALSE(top::sort_key_for('x'));
    EXPECT_FALSE(top::sort_key_for('q'));
}

TEST(TopTable, TiesAndVmsWithoutRatesSortByName) {
    std::vector<top::Row> rows(3);
    rows[0].name = "z";  // no rates yet: its 0 ranks last
    rows[1].name = "m", rows[1].has_rates = true, rows[1].cpu_pct = 5;
    rows[2].name = "b", rows[2].has_rates = true, rows[2].cpu_pct = 5;
    top::sort_rows(rows, top::SortKey::Cpu);
    EXPECT_EQ(order(rows), "bmz");
}

TEST(TopTable, WideTablesShowEveryColumnAndTheTotals) {
    auto rows = three_rows();
    rows[0].pid = 4242, rows[0].vcpus = 2, rows[0].overhead_pct = 1.5;
    rows[0].disk_read_bps = 3.5 * 1024 * 1024;
    rows[0].exits_ps = 12'345;
    top::View view{.key = top::SortKey::Cpu, .width = 200, .clock = "12:00:00"};
    view.skipped.stale = 2;
    view.skipped.not_started = 1;
    auto lines = lines_of(top::format_table(rows, view));
    ASSERT_EQ(lines.size(), 6u);
    EXPECT_NE(lines[0].find("12:00:00 - 3 VMs (skipped: 2 stale, 1 not started) - sort: cpu"),
              std::string::npos)
        << lines[0];
    EXPECT_NE(lines[0].find("% of one host CPU"), std::string::npos);
    // 10 + 90 + 50 % CPU, 30 + 5 + 60 % steal, 12345 + 3 + 1 exits/s, 1 + 3 + 2 bytes.
    EXPECT_NE(lines[1].find("CPU 150.0% (ovh 1.5%), steal 95.0%"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("exits 12.3K, rss 6"), std::string::npos) << lines[1];
    for (const char* title : {"VM", "PID", "VCPU", "CPU%", "OVH%", "STEAL%", "DISK-R", "DISK-W",
                              "NET-RX", "NET-TX", "EXITS", "RSS"})
        EXPECT_NE(lines[2].find(title), std::string::npos) << title;
    EXPECT_EQ(lines[3].rfind("a ", 0), 0u) << lines[3];
    for (const char* cell : {"4242", " 2 ", "10.0", "1.5", "30.0", "3.5M", "12.3K"})
        EXPECT_NE(lines[3].find(cell), std::string::npos) << cell << " in " << lines[3];
}

TEST(TopTable, ANarrowTerminalDropsMinorColumnsThenCutsNames) {
    top::Row r;
    r.name = "a-very-long-virtual-machine-name-that-does-not-fit";
    r.pid = 4242;
    r.has_rates = true;
    r.cpu_pct = 123.45;
    r.net_tx_bps = 2048;
    r.rss = 1 << 30;
    for (unsigned width : {120u, 80u, 64u}) {
        auto lines = lines_of(top::format_table({r}, {.width = width, .clock = "12:00:00"}));
        ASSERT_EQ(lines.size(), 4u);
        for (const auto& line : lines) EXPECT_LE(line.size(), width) << line;
        // CPU, steal, disk and network stay at every width.
        for (const char* title : {"CPU%", "STEAL%", "DISK-R", "DISK-W", "NET-RX", "NET-TX"})
            EXPECT_NE(lines[2].find(title), std::string::npos) << title << " at " << width;
        EXPECT_NE(lines[3].find("123.5"), std::string::npos) << lines[3];
        EXPECT_NE(lines[3].find("2.0K"), std::string::npos) << lines[3];
        EXPECT_EQ(lines[3].rfind("a-very-", 0), 0u) << lines[3];
        EXPECT_NE(lines[3].find("~ "), std::string::npos) << lines[3];  // the cut is marked
    }
    auto at80 = lines_of(top::format_table({r}, {.width = 80}));
    EXPECT_EQ(at80[2].find("PID"), std::string::npos) << at80[2];  // the first to go
    EXPECT_NE(at80[2].find("RSS"), std::string::npos) << at80[2];
    EXPECT_NE(at80[3].find("1.0G"), std::string::npos) << at80[3];
    for (const auto& line : lines_of(top::format_table({r}, {.width = 40})))
        EXPECT_LE(line.size(), 40u);
    auto at120 = lines_of(top::format_table({r}, {.width = 120}));
    EXPECT_NE(at120[3].find("4242"), std::string::npos) << at120[3];
}

TEST(TopTable, WithoutAWidthNamesAreWhole) {
    top::Row r;
    r.name = "a-very-long-virtual-machine-name-that-does-not-fit";
    auto lines = lines_of(top::format_table({r}, {}));
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[3].rfind(r.name + " ", 0), 0u) << lines[3];
    EXPECT_NE(lines[3].find(" - "), std::string::npos);  // no rates yet
}

TEST(TopTable, AShortTerminalShowsTheTopRowsAndHowManyMore) {
    std::vector<top::Row> rows(10);
    for (size_t i = 0; i < rows.size(); ++i) rows[i].name = fmt::format("vm{}", i);
    auto lines =
        lines_of(top::format_table(rows, {.key = top::SortKey::Steal, .width = 100, .height = 8}));
    ASSERT_EQ(lines.size(), 8u);
    EXPECT_EQ(lines[3].rfind("vm0 ", 0), 0u);
    EXPECT_EQ(lines[6].rfind("vm3 ", 0), 0u);
    EXPECT_EQ(lines[7], "... 6 more (sorted by steal)");
    EXPECT_EQ(lines_of(top::format_table(rows, {.height = 13})).size(), 13u);  // all fit
    EXPECT_EQ(lines_of(top::format_table(rows, {.height = 2})).size(), 2u);
}

TEST(TopTable, NamesCannotWriteEscapesToTheTerminal) {
    top::Row r;
    r.name = "evil\x1b[2J\x1b]0;owned\x07\n";
    std::string t = top::format_table({r}, {.width = 100});
    EXPECT_EQ(t.find('\x1b'), std::string::npos);
    EXPECT_EQ(t.find('\x07'), std::string::npos);
    EXPECT_NE(t.find("evil?[2J?]0;owned??"), std::string::npos) << t;
    EXPECT_EQ(lines_of(t).size(), 4u);
}

TEST(TopTable, HumanRates) {
    EXPECT_EQ(top::human_rate(0), "0");
    EXPECT_EQ(top::human_rate(999), "999");
    EXPECT_EQ(top::human_rate(1536), "1.5K");
    EXPECT_EQ(top::human_rate(12.0 * 1024 * 1024), "12.0M");
    EXPECT_EQ(top::human_rate(3.1 * 1024 * 1024 * 1024), "3.1G");
    EXPECT_EQ(top::human_count(999), "999");
    EXPECT_EQ(top::human_count(12'000), "12.0K");
    EXPECT_EQ(top::human_count(1'500'000), "1.5M");
}

}  // namespace
}  // namespace rv::app
