// ringvisor report LEDGER...: what each VM used over a time range, from the
// JSON-lines ledgers `ringvisor run --ledger` writes (vmm/accounting.h), as a
// table or CSV, and a PNG chart of CPU share over time (report_png.h).
// A VM instance is (vm id, pid): one VM restarted is two instances.
// Range rule: a ledger record covers [utc_ms - seconds, utc_ms]; a record
// counts, whole, when its end lies in (from, to]. Records are not pro-rated,
// so a range is exact to one ledger interval.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace rv::app::report {

// The interval part of one ledger line.
struct Record {
    std::string vm;
    int64_t pid{0};
    uint64_t end_ms{0};  // utc_ms
    double seconds{0};
    uint64_t guest_ms{0}, overhead_ms{0}, steal_ms{0}, exits{0};
    uint64_t read_bytes{0}, write_bytes{0}, reads{0}, writes{0}, requests{0};
    uint64_t rx_bytes{0}, tx_bytes{0}, rx_packets{0}, tx_packets{0};
    uint64_t rss{0};
};

// Every line of a ledger; `name` is for messages. A line that is not a
// ledger record is an InvalidInput error naming name:line. Lines without an
// interval (none are written today) are skipped.
Result<std::vector<Record>> parse_ledger(std::istream& in, std::string_view name);

// "2026-12-05T10:00:00Z" (UTC), epoch milliseconds, or relative to `now_ms`:
// "-90s", "-30m", "-2h", "-1d".
Result<uint64_t> parse_time(std::string_view text, uint64_t now_ms);

struct Totals {
    std::string vm;
    int64_t pid{0};
    uint64_t from_ms{0}, to_ms{0};  // the first covered start, the last covered end
    double seconds{0};              // the intervals' lengths, summed
    size_t records{0};
    Record sum;                     // counters summed; rss is the largest seen
    double cpu_share() const;       // (guest + overhead) / seconds: cores used on average
};

// Per VM instance, in order of first appearance, over (from_ms, to_ms].
std::vector<Totals> summarize(const std::vector<Record>& records, uint64_t from_ms, uint64_t to_ms);

std::string format_table(const std::vector<Totals>& totals);
std::string format_csv(const std::vector<Totals>& totals);  // RFC 4180, a header line first

std::string utc_iso(uint64_t ms);  // "2026-12-05T10:00:00Z"

}  // namespace rv::app::report
