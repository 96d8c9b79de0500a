// ringvisor report: ledger parsing, the range rule, sums per VM instance,
// CSV, and the PNG chart.
#include <gtest/gtest.h>
#include <gd.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "app/report.h"
#include "app/report_png.h"

namespace rv::app::report {
namespace {

// One ledger line as vmm/accounting.cpp writes it (the fields report reads).
std::string line(const std::string& vm, int pid, uint64_t end_ms, double seconds, uint64_t guest,
                 uint64_t overhead, uint64_t read = 0, uint64_t rx = 0, uint64_t rss = 1 << 20) {
    return fmt::format(
        R"({{"vm":"{}","pid":{},"kind":"interval","utc_ms":{},"rss_bytes":{},"total":{{}},)"
        R"("interval":{{"seconds":{},"guest_cpu_ms":{},"vmm_overhead_cpu_ms":{},"steal_ms":5,)"
        R"("exits":{{"exits":100,"io_exits":3}},"block":{{"root":{{"read_bytes":{},"write_bytes":10,)"
        R"("reads":2,"writes":1,"requests":3}},"data":{{"read_bytes":{},"write_bytes":0,"reads":1,)"
        R"("writes":0,"requests":1}}}},"net":{{"eth0":{{"rx_bytes":{},"tx_bytes":7,"rx_packets":2,)"
        R"("tx_packets":1}}}}}}}})",
        vm, pid, end_ms, rss, seconds, guest, overhead, read, read, rx) + "\n";
}

std::vector<Record> parse(const std::string& text) {
    std::istringstream in(text);
    auto r = parse_ledger(in, "test.ledger");
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : std::vector<Record>{};
}

TEST(ReportLedger, ParsesIntervalsAndSumsDrivesAndNics) {
    auto records = parse(line("web", 7, 20'000, 10, 4'000, 1'000, 100, 50));
    ASSERT_EQ(records.size(), 1u);
    const Record& r = records[0];
    EXPECT_EQ(r.vm, "web");
    EXPECT_EQ(r.pid, 7);
    EXPECT_EQ(r.end_ms, 20'000u);
    EXPECT_DOUBLE_EQ(r.seconds, 10);
    EXPECT_EQ(r.read_bytes, 200u);  // both drives
    EXPECT_EQ(r.reads, 3u);
    EXPECT_EQ(r.requests, 4u);
    EXPECT_EQ(r.rx_bytes, 50u);
    EXPECT_EQ(r.exits, 100u);
}

TEST(ReportLedger, MalformedLinesNameTheFileAndLine) {
    std::istringstream in(line("web", 7, 20'000, 10, 1, 1) + "{not json\n");
    auto r = parse_ledger(in, "a.ledger");
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is_input());
    EXPECT_NE(r.error().message().find("a.ledger:2"), std::string::npos) << r.error().message();
    std::istringstream other(R"({"hello": 1})" "\n");
    auto o = parse_ledger(other, "b.ledger");
    ASSERT_FALSE(o);
    EXPECT_NE(o.error().message().find("b.ledger:1"), std::string::npos);
    std::istringstream blank("\n\n");
    EXPECT_TRUE(parse_ledger(blank, "c")->empty());
}

TEST(ReportSummary, SumsPerInstanceOverTheRangeByRecordEnd) {
    auto records = parse(line("web", 7, 10'000, 10, 2'000, 500, 0, 0, 1 << 20) +
                         line("web", 7, 20'000, 10, 4'000, 1'000, 0, 0, 3 << 20) +
                         line("web", 7, 30'000, 10, 6'000, 1'500) +
                         line("db", 9, 20'000, 10, 10'000, 0) +
                         line("web", 8, 25'000, 5, 1'000, 0));  // restarted: another instance
    auto all = summarize(records, 0, UINT64_MAX);
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].vm, "web");
    EXPECT_EQ(all[0].pid, 7);
    EXPECT_EQ(all[0].records, 3u);
    EXPECT_DOUBLE_EQ(all[0].seconds, 30);
    EXPECT_EQ(all[0].sum.guest_ms, 12'000u);
    EXPECT_EQ(all[0].from_ms, 0u);
    EXPECT_EQ(all[0].to_ms, 30'000u);
    EXPECT_DOUBLE_EQ(all[0].cpu_share(), 15'000.0 / 30'000.0);
    EXPECT_EQ(all[0].sum.rss, 3u << 20);  // the largest seen
    EXPECT_EQ(all[1].vm, "db");
    EXPECT_DOUBLE_EQ(all[1].cpu_share(), 1.0);
    EXPECT_EQ(all[2].pid, 8);
    // (10 s, 20 s]: only the record ending at 20 s of web/7 (whole, not pro-rated).
    auto mid = summarize(records, 10'000, 20'000);
    ASSERT_EQ(mid.size(), 2u);
    EXPECT_EQ(mid[0].records, 1u);
    EXPECT_EQ(mid[0].sum.guest_ms, 4'000u);
    EXPECT_EQ(mid[0].from_ms, 10'000u);
    EXPECT_TRUE(summarize(records, 40'000, 50'000).empty());
    EXPECT_EQ(format_table({}), "no ledger records in the range\n");
}

TEST(ReportSummary, CsvHasAHeaderAndQuotesWhatNeedsIt) {
    auto records = parse(line("web", 7, 10'000, 10, 2'000, 500));
    records[0].vm = "a \"quoted\", vm";
    std::string csv = format_csv(summarize(records, 0, UINT64_MAX));
    std::istringstream in(csv);
    std::string header, row;
    std::getline(in, header);
    std::getline(in, row);
    EXPECT_EQ(header.rfind("vm,pid,from,to,seconds,guest_cpu_ms", 0), 0u);
    EXPECT_EQ(row.rfind(R"("a ""quoted"", vm",7,1970-01-01T00:00:00Z,1970-01-01T00:00:10Z,10.000,2000,500,)", 0), 0u) << row;
    EXPECT_EQ(csv.find("\r\n") != std::string::npos, true);
}

TEST(ReportTime, AbsoluteEpochAndRelative) {
    EXPECT_EQ(*parse_time("2026-12-05T10:00:00Z", 0), 1796464800000u);
    EXPECT_EQ(*parse_time("1796464800000", 0), 1796464800000u);
    EXPECT_EQ(*parse_time("-90s", 100'000), 10'000u);
    EXPECT_EQ(*parse_time("-2h", 10'000'000), 10'000'000u - 7'200'000u);
    EXPECT_EQ(*parse_time("-1d", 1000), 0u);
    for (const char* bad : {"", "yesterday", "-5x", "2026-12-05T10:00:00", "12abc", "-s"})
        EXPECT_FALSE(parse_time(bad, 0)) << bad;
}

TEST(ReportPng, WritesAPngOfTheRequestedSize) {
    char dir[] = "/tmp/rv-report-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    std::string path = std::string(dir) + "/cpu.png";
    auto records = parse(line("web", 7, 10'000, 10, 2'000, 500) + line("web", 7, 20'000, 10, 9'000, 500) +
                         line("db", 9, 20'000, 10, 10'000, 0));
    ASSERT_TRUE(write_cpu_chart(records, 0, UINT64_MAX, path, 640, 300));
    FILE* f = std::fopen(path.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    unsigned char sig[8];
    ASSERT_EQ(std::fread(sig, 1, 8, f), 8u);
    EXPECT_EQ(std::memcmp(sig, "\x89PNG\r\n\x1a\n", 8), 0);
    std::rewind(f);
    gdImage* im = gdImageCreateFromPng(f);
    std::fclose(f);
    ASSERT_NE(im, nullptr);
    EXPECT_EQ(gdImageSX(im), 640);
    EXPECT_EQ(gdImageSY(im), 300);
    // Something other than the white background was drawn in the plot area.
    int coloured = 0;
    for (int x = 60; x < 620; x += 3)
        for (int y = 30; y < 260; y += 3)
            if ((gdImageGetTrueColorPixel(im, x, y) & 0xFFFFFF) != 0xFFFFFF) ++coloured;
    EXPECT_GT(coloured, 50);
    gdImageDestroy(im);
    EXPECT_FALSE(write_cpu_chart(records, 0, UINT64_MAX, path, 50, 50));            // too small
    EXPECT_FALSE(write_cpu_chart(records, 50'000, 60'000, path, 640, 300));         // nothing in range
    EXPECT_FALSE(write_cpu_chart(records, 0, UINT64_MAX, "/nonexistent/x.png", 640, 300));
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rv::app::report
