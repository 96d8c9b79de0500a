// ringvisor top: one line per VM on the host — CPU, steal, disk and network
// rates, exits/s — from two successive GET /accounting samples of each VM's
// API socket. The arithmetic and the table are pure functions over the JSON
// (unit-tested); top_command.cpp finds the sockets, samples and draws.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace rv::app::top {

// The totals of one GET /accounting reply (vmm/accounting.cpp `record`).
struct Sample {
    std::string socket;
    std::string vm;
    int64_t pid{0};
    uint64_t utc_ms{0};
    unsigned vcpus{0};
    uint64_t guest_ms{0}, overhead_ms{0}, steal_ms{0}, exits{0};
    uint64_t disk_read{0}, disk_written{0}, net_rx{0}, net_tx{0};  // bytes, all drives/NICs
    uint64_t rss{0};
};
Result<Sample> parse_sample(const nlohmann::json& reply, std::string socket);

// Rates between two samples of one VM. Percentages are of one host CPU, as
// top's: a VM with two busy vCPUs shows 200 % CPU, and steal is summed over
// the vCPUs the same way. CPU is guest time plus the VMM's overhead (device
// emulation, exits, the event loop). A new pid (the VM was restarted behind
// the same socket) or a first sample has no rates; a counter that went
// backwards counts as 0, never negative.
struct Row {
    std::string name;  // the VM id, or the socket's file name when the id is the default
    int64_t pid{0};
    unsigned vcpus{0};
    bool has_rates{false};
    double cpu_pct{0}, guest_pct{0}, overhead_pct{0}, steal_pct{0};
    double disk_read_bps{0}, disk_write_bps{0}, net_rx_bps{0}, net_tx_bps{0}, exits_ps{0};
    uint64_t rss{0};
};
Row rates(const std::optional<Sample>& before, const Sample& now);

// Sockets that gave no row this refresh, by why (shown as counts).
struct Skipped {
    size_t stale{0};          // nothing listens: a VMM that ended and left its socket
    size_t not_started{0};    // a VMM waiting to be configured (NotAllowed)
    size_t not_answering{0};  // no reply within the timeout: a hung or very busy VMM
    size_t no_permission{0};  // the socket is another user's (run top as the VMs' user)
    size_t bad_reply{0};      // something else answered, or not with accounting
    size_t total() const { return stale + not_started + not_answering + no_permission + bad_reply; }
};

enum class SortKey { Cpu, Steal, Disk, Net, Exits, Rss, Name };
std::optional<SortKey> parse_sort_key(std::string_view name);  // cpu steal disk net exits rss name
std::optional<SortKey> sort_key_for(char key);                 // c s d n e, r or m (memory), N
std::string_view sort_key_name(SortKey key);
void sort_rows(std::vector<Row>& rows, SortKey key);  // largest first; names A..Z

struct View {
    SortKey key{SortKey::Cpu};
    unsigned width{0};   // columns; 0: no limit (names are never cut)
    unsigned height{0};  // lines; 0: no limit (otherwise "... N more" ends the table)
    Skipped skipped;
    std::string clock;  // "12:00:00"
};

// The table: a title line, a line of host totals, the column titles and one
// line per VM. Every line fits `width`: on a narrow terminal the least
// useful columns go first (PID, VCPU, OVH%, EXITS, RSS), then the VM name
// is cut (marked '~'). Names are shown with anything unprintable as '?'.
std::string format_table(const std::vector<Row>& rows, const View& view);

std::string human_rate(double bytes_per_s);  // "0", "512", "1.5K", "12.0M", "3.1G" (KiB, MiB, ...)
std::string human_count(double per_s);       // "0", "999", "12.0K", "1.5M" (thousands, ...)

}  // namespace rv::app::top
