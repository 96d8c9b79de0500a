// `ringvisor report [--from T] [--to T] [--csv FILE|-] [--png FILE] LEDGER...`
#pragma once

#include <string>
#include <vector>

namespace rv::app {

struct ReportOptions {
    std::vector<std::string> ledgers;
    std::string from, to;  // report::parse_time; empty: unbounded
    std::string csv;       // a file, or "-" for stdout instead of the table
    std::string png;
    int width{900}, height{400};
};

int run_report(const ReportOptions& options);  // exit status: 0, 2 for bad input, 1 otherwise

}  // namespace rv::app
