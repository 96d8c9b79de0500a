// `ringvisor top`: finds the VMs of a run directory by their API sockets,
// samples GET /accounting every interval and shows app/top.h's table:
// redrawn in place with single-key sorting on a terminal, or printed once
// per refresh (--batch, or stdout not a terminal).
#pragma once

#include <string>
#include <vector>

#include "base/error.h"

namespace rv::app {

struct TopOptions {
    std::string run_dir;                // scanned for sockets at every refresh
    std::vector<std::string> sockets;   // named on the command line
    double interval_s{2.0};
    std::string sort{"cpu"};
    bool batch{false};
    unsigned iterations{0};  // tables to print; 0: until q or a signal
};

// The API sockets in `dir` (every Unix socket, sorted), plus `extra`.
std::vector<std::string> find_sockets(const std::string& dir, const std::vector<std::string>& extra);

int run_top(const TopOptions& options);  // exit status

}  // namespace rv::app
