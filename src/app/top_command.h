// `ringvisor top`: finds the VMs of a run directory by their API sockets,
// samples GET /accounting every interval and shows app/top.h's table:
// redrawn in place with single-key sorting on a terminal, or printed once
// per refresh (--batch, or stdout not a terminal).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "app/top.h"

namespace rv::app {

struct TopOptions {
    std::string run_dir;               // scanned for sockets at every refresh
    std::vector<std::string> sockets;  // named on the command line
    double interval_s{2.0};
    std::string sort{"cpu"};
    bool batch{false};
    unsigned iterations{0};  // tables to print; 0: until q or a signal
    double timeout_s{0};     // per VM and refresh; 0: half the interval, 0.25..1 s
};

// The API sockets in `dir` (every Unix socket, sorted), plus `extra`.
std::vector<std::string> find_sockets(const std::string& dir,
                                      const std::vector<std::string>& extra);

// One refresh: every socket asked at once, each bounded by `timeout`. Rows
// have rates where `previous` (the last refresh's samples, by socket) has
// the same VM; sockets that gave no sample are counted by why.
struct TopSnapshot {
    std::vector<top::Row> rows;                  // in the order of `sockets`
    std::map<std::string, top::Sample> samples;  // by socket: the next `previous`
    top::Skipped skipped;
};
TopSnapshot sample_vms(const std::vector<std::string>& sockets,
                       const std::map<std::string, top::Sample>& previous,
                       std::chrono::milliseconds timeout);

int run_top(const TopOptions& options);  // exit status

}  // namespace rv::app
