#include "app/top.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

namespace rv::app::top {

namespace {

uint64_t u64(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

uint64_t sum_field(const nlohmann::json& section, const char* table, const char* field) {
    uint64_t total = 0;
    auto it = section.find(table);
    if (it == section.end() || !it->is_object()) return 0;
    for (const auto& [id, counters] : it->items())
        if (counters.is_object()) total += u64(counters, field);
    return total;
}

// now - before, or 0 when a counter went backwards.
double delta(uint64_t now, uint64_t before) { return now >= before ? double(now - before) : 0.0; }

}  // namespace

Result<Sample> parse_sample(const nlohmann::json& reply, std::string socket) {
    if (!reply.is_object() || !reply.contains("total") || !reply["total"].is_object())
        return std::unexpected(Error(fmt::format("{}: GET /accounting has no totals", socket), 0,
                                     ErrorKind::InvalidInput));
    const auto& total = reply["total"];
    Sample s;
    s.socket = std::move(socket);
    s.vm = reply.value("vm", std::string{});
    s.pid = reply.value("pid", int64_t{0});
    s.utc_ms = u64(reply, "utc_ms");
    s.rss = u64(reply, "rss_bytes");
    if (auto v = total.find("vcpus"); v != total.end() && v->is_array())
        s.vcpus = static_cast<unsigned>(v->size());
    s.guest_ms = u64(total, "guest_cpu_ms");
    s.overhead_ms = u64(total, "vmm_overhead_cpu_ms");
    s.steal_ms = u64(total, "steal_ms");
    if (auto e = total.find("exits"); e != total.end() && e->is_object()) s.exits = u64(*e, "exits");
    s.disk_read = sum_field(total, "block", "read_bytes");
    s.disk_written = sum_field(total, "block", "write_bytes");
    s.net_rx = sum_field(total, "net", "rx_bytes");
    s.net_tx = sum_field(total, "net", "tx_bytes");
    return s;
}

Row rates(const std::optional<Sample>& before, const Sample& now) {
    Row row;
    row.name = now.vm;
    if (row.name.empty() || row.name == "ringvisor")
        row.name = std::filesystem::path(now.socket).stem().string();
    row.pid = now.pid;
    row.vcpus = now.vcpus;
    row.rss = now.rss;
    if (!before || before->pid != now.pid || now.utc_ms <= before->utc_ms) return row;
    const double seconds = double(now.utc_ms - before->utc_ms) / 1000.0;
    const double ms = seconds * 1000.0;
    row.has_rates = true;
    row.guest_pct = 100.0 * delta(now.guest_ms, before->guest_ms) / ms;
    row.cpu_pct = row.guest_pct + 100.0 * delta(now.overhead_ms, before->overhead_ms) / ms;
    row.steal_pct = 100.0 * delta(now.steal_ms, before->steal_ms) / ms;
    row.disk_read_bps = delta(now.disk_read, before->disk_read) / seconds;
    row.disk_write_bps = delta(now.disk_written, before->disk_written) / seconds;
    row.net_rx_bps = delta(now.net_rx, before->net_rx) / seconds;
    row.net_tx_bps = delta(now.net_tx, before->net_tx) / seconds;
    row.exits_ps = delta(now.exits, before->exits) / seconds;
    return row;
}

std::optional<SortKey> parse_sort_key(std::string_view name) {
    if (name == "cpu") return SortKey::Cpu;
    if (name == "steal") return SortKey::Steal;
    if (name == "disk") return SortKey::Disk;
    if (name == "net") return SortKey::Net;
    if (name == "exits") return SortKey::Exits;
    if (name == "rss") return SortKey::Rss;
    if (name == "name") return SortKey::Name;
    return std::nullopt;
}

std::optional<SortKey> sort_key_for(char key) {
    switch (key) {
        case 'c': return SortKey::Cpu;
        case 's': return SortKey::Steal;
        case 'd': return SortKey::Disk;
        case 'n': return SortKey::Net;
        case 'e': return SortKey::Exits;
        case 'm': return SortKey::Rss;
        case 'N': return SortKey::Name;
        default: return std::nullopt;
    }
}

std::string_view sort_key_name(SortKey key) {
    switch (key) {
        case SortKey::Cpu: return "cpu";
        case SortKey::Steal: return "steal";
        case SortKey::Disk: return "disk";
        case SortKey::Net: return "net";
        case SortKey::Exits: return "exits";
        case SortKey::Rss: return "rss";
        case SortKey::Name: return "name";
    }
    return "cpu";
}

void sort_rows(std::vector<Row>& rows, SortKey key) {
    auto value = [key](const Row& r) -> double {
        switch (key) {
            case SortKey::Cpu: return r.cpu_pct;
            case SortKey::Steal: return r.steal_pct;
            case SortKey::Disk: return r.disk_read_bps + r.disk_write_bps;
            case SortKey::Net: return r.net_rx_bps + r.net_tx_bps;
            case SortKey::Exits: return r.exits_ps;
            case SortKey::Rss: return double(r.rss);
            case SortKey::Name: return 0;
        }
        return 0;
    };
    std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
        if (key == SortKey::Name || value(a) == value(b))
            return a.name != b.name ? a.name < b.name : a.pid < b.pid;
        return value(a) > value(b);
    });
}

std::string human_rate(double v) {
    if (v < 1000) return fmt::format("{:.0f}", v);
    static constexpr const char* kUnits[] = {"K", "M", "G", "T"};
    size_t unit = 0;
    v /= 1024;
    while (v >= 1000 && unit + 1 < std::size(kUnits)) {
        v /= 1024;
        ++unit;
    }
    return fmt::format("{:.1f}{}", v, kUnits[unit]);
}

std::string format_table(const std::vector<Row>& rows, SortKey key, unsigned width,
                         size_t unreachable, std::string_view clock) {
    double cpu = 0, steal = 0;
    for (const auto& r : rows) cpu += r.cpu_pct, steal += r.steal_pct;
    std::string out = fmt::format("ringvisor top - {}  {} VM(s)", clock, rows.size());
    if (unreachable) out += fmt::format(", {} socket(s) not answering", unreachable);
    out += fmt::format("  CPU {:.1f}%  steal {:.1f}%  sort: {}\n", cpu, steal, sort_key_name(key));
    // The fixed columns after the name; the name takes what is left (8..24).
    constexpr std::string_view kTitles =
        "    PID VCPU   CPU%  GUEST%  STEAL%  DISK-R/s  DISK-W/s    NET-RX/s    NET-TX/s  EXITS/s    RSS";
    const unsigned fixed = static_cast<unsigned>(kTitles.size());
    const unsigned name_w = std::clamp<int>(int(width) - int(fixed) - 1, 8, 24);
    auto cut = [width](std::string line) {
        if (line.size() > width) line.resize(width);
        return line + "\n";
    };
    out += cut(fmt::format("{:<{}} {}", "VM", name_w, kTitles));
    for (const auto& r : rows) {
        std::string name = r.name.size() > name_w ? r.name.substr(0, name_w - 1) + "~" : r.name;
        auto pct = [&](double v) { return r.has_rates ? fmt::format("{:.1f}", v) : std::string("-"); };
        auto rate = [&](double v) { return r.has_rates ? human_rate(v) : std::string("-"); };
        out += cut(fmt::format("{:<{}} {:>7} {:>4} {:>6} {:>7} {:>7} {:>9} {:>9} {:>11} {:>11} {:>8} {:>6}",
                               name, name_w, r.pid, r.vcpus, pct(r.cpu_pct), pct(r.guest_pct),
                               pct(r.steal_pct), rate(r.disk_read_bps), rate(r.disk_write_bps),
                               rate(r.net_rx_bps), rate(r.net_tx_bps), rate(r.exits_ps),
                               human_rate(double(r.rss))));
    }
    return out;
}

}  // namespace rv::app::top
