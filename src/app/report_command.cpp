#include "app/report_command.h"

#include <chrono>
#include <cstdio>
#include <fstream>

#include "app/report.h"
#include "app/report_png.h"

namespace rv::app {

namespace {
int fail(const Error& e) {
    std::fprintf(stderr, "ringvisor: error: %s\n", e.message().c_str());
    return e.is_input() ? 2 : 1;
}
}  // namespace

int run_report(const ReportOptions& o) {
    const uint64_t now = uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
    uint64_t from = 0, to = UINT64_MAX;
    if (!o.from.empty()) {
        auto t = report::parse_time(o.from, now);
        if (!t) return fail(t.error());
        from = *t;
    }
    if (!o.to.empty()) {
        auto t = report::parse_time(o.to, now);
        if (!t) return fail(t.error());
        to = *t;
    }
    if (to <= from) return fail(Error("--to must be after --from", 0, ErrorKind::InvalidInput));
    std::vector<report::Record> records;
    for (const auto& path : o.ledgers) {
        std::ifstream in(path);
        if (!in) return fail(Error::from_errno(path).with_kind(ErrorKind::InvalidInput));
        auto parsed = report::parse_ledger(in, path);
        if (!parsed) return fail(parsed.error());
        records.insert(records.end(), parsed->begin(), parsed->end());
    }
    auto totals = report::summarize(records, from, to);
    if (o.csv == "-") {
        std::fputs(report::format_csv(totals).c_str(), stdout);
    } else {
        std::fputs(report::format_table(totals).c_str(), stdout);
        if (!o.csv.empty()) {
            std::ofstream out(o.csv, std::ios::binary | std::ios::trunc);
            out << report::format_csv(totals);
            if (!out.flush()) return fail(Error::from_errno("--csv " + o.csv).with_kind(ErrorKind::InvalidInput));
        }
    }
    if (!o.png.empty())
        if (auto r = report::write_cpu_chart(records, from, to, o.png, o.width, o.height); !r)
            return fail(r.error());
    return 0;
}

}  // namespace rv::app
