#include "app/top.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>

#include "app/accounting_json.h"

namespace rv::app::top {

namespace {

// now - before, or 0 when a counter went backwards.
double delta(uint64_t now, uint64_t before) {
    return now >= before ? double(now - before) : 0.0;
}

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
    s.utc_ms = json_u64(reply, "utc_ms");
    s.rss = json_u64(reply, "rss_bytes");
    if (auto v = total.find("vcpus"); v != total.end() && v->is_array())
        s.vcpus = static_cast<unsigned>(v->size());
    s.guest_ms = json_u64(total, "guest_cpu_ms");
    s.overhead_ms = json_u64(total, "vmm_overhead_cpu_ms");
    s.steal_ms = json_u64(total, "steal_ms");
    if (auto e = total.find("exits"); e != total.end() && e->is_object())
        s.exits = json_u64(*e, "exits");
    s.disk_read = json_sum_field(total, "block", "read_bytes");
    s.disk_written = json_sum_field(total, "block", "write_bytes");
    s.net_rx = json_sum_field(total, "net", "rx_bytes");
    s.net_tx = json_sum_field(total, "net", "tx_bytes");
    return s;
}

Row rates(const std::optional<Sample>& before, const Sample& now) {
    Row row;
    row.name = now.vm;
    if (row.name.empty() || row.name == "ringvisor")  // run --id's default
        row.name = std::filesystem::path(now.socket).stem().string();
    row.pid = now.pid;
    row.vcpus = now.vcpus;
    row.rss = now.rss;
    if (!before || before->pid != now.pid || now.utc_ms <= before->utc_ms) return row;
    const double ms = double(now.utc_ms - before->utc_ms);
    const double seconds = ms / 1000.0;
    row.has_rates = true;
    row.guest_pct = 100.0 * delta(now.guest_ms, before->guest_ms) / ms;
    row.overhead_pct = 100.0 * delta(now.overhead_ms, before->overhead_ms) / ms;
    row.cpu_pct = row.guest_pct + row.overhead_pct;
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
        case 'c':
            return SortKey::Cpu;
        case 's':
            return SortKey::Steal;
        case 'd':
            return SortKey::Disk;
        case 'n':
            return SortKey::Net;
        case 'e':
            return SortKey::Exits;
        case 'r':
        case 'm':
            return SortKey::Rss;
        case 'N':
            return SortKey::Name;
        default:
            return std::nullopt;
    }
}

std::string_view sort_key_name(SortKey key) {
    switch (key) {
        case SortKey::Cpu:
            return "cpu";
        case SortKey::Steal:
            return "steal";
        case SortKey::Disk:
            return "disk";
        case SortKey::Net:
            return "net";
        case SortKey::Exits:
            return "exits";
        case SortKey::Rss:
            return "rss";
        case SortKey::Name:
            return "name";
    }
    return "cpu";
}

void sort_rows(std::vector<Row>& rows, SortKey key) {
    auto value = [key](const Row& r) -> double {
        switch (key) {
            case SortKey::Cpu:
                return r.cpu_pct;
            case SortKey::Steal:
                return r.steal_pct;
            case SortKey::Disk:
                return r.disk_read_bps + r.disk_write_bps;
            case SortKey::Net:
                return r.net_rx_bps + r.net_tx_bps;
            case SortKey::Exits:
                return r.exits_ps;
            case SortKey::Rss:
                return double(r.rss);
            case SortKey::Name:
                return 0;
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

std::string human_count(double v) {
    if (v < 1000) return fmt::format("{:.0f}", v);
    static constexpr const char* kUnits[] = {"K", "M", "G"};
    size_t unit = 0;
    v /= 1000;
    while (v >= 1000 && unit + 1 < std::size(kUnits)) {
        v /= 1000;
        ++unit;
    }
    return fmt::format("{:.1f}{}", v, kUnits[unit]);
}

namespace {

// A name from a socket's file name or a VMM's reply goes to a terminal: no
// escape sequences, and one byte per column.
std::string printable(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c < 0x20 || c > 0x7e) c = '?';
    return out;
}

struct Column {
    std::string_view title;
    unsigned width;
    int drop_order;  // 0: always shown; else dropped on a narrow terminal, lowest first
    std::string (*cell)(const Row&);
};

std::string pct(const Row& r, double v) {
    return r.has_rates ? fmt::format("{:.1f}", v) : "-";
}
std::string rate(const Row& r, double v) {
    return r.has_rates ? human_rate(v) : "-";
}

constexpr Column kColumns[] = {
    {"PID", 7, 1, [](const Row& r) { return fmt::format("{}", r.pid); }},
    {"VCPU", 4, 2, [](const Row& r) { return fmt::format("{}", r.vcpus); }},
    {"CPU%", 6, 0, [](const Row& r) { return pct(r, r.cpu_pct); }},
    {"OVH%", 5, 3, [](const Row& r) { return pct(r, r.overhead_pct); }},
    {"STEAL%", 6, 0, [](const Row& r) { return pct(r, r.steal_pct); }},
    {"DISK-R", 7, 0, [](const Row& r) { return rate(r, r.disk_read_bps); }},
    {"DISK-W", 7, 0, [](const Row& r) { return rate(r, r.disk_write_bps); }},
    {"NET-RX", 7, 0, [](const Row& r) { return rate(r, r.net_rx_bps); }},
    {"NET-TX", 7, 0, [](const Row& r) { return rate(r, r.net_tx_bps); }},
    {"EXITS", 7, 4, [](const Row& r) { return r.has_rates ? human_count(r.exits_ps) : "-"; }},
    {"RSS", 6, 5, [](const Row& r) { return human_rate(double(r.rss)); }},
};
constexpr unsigned kMinName = 8;

std::string title_line(const std::vector<Row>& rows, const View& view) {
    std::string out = fmt::format("ringvisor top - {} - {} VM{}", view.clock, rows.size(),
                                  rows.size() == 1 ? "" : "s");
    const Skipped& s = view.skipped;
    if (s.total()) {
        std::vector<std::string> why;
        if (s.stale) why.push_back(fmt::format("{} stale", s.stale));
        if (s.not_started) why.push_back(fmt::format("{} not started", s.not_started));
        if (s.not_answering) why.push_back(fmt::format("{} not answering", s.not_answering));
        if (s.no_permission) why.push_back(fmt::format("{} no permission", s.no_permission));
        if (s.bad_reply) why.push_back(fmt::format("{} bad reply", s.bad_reply));
        out += fmt::format(" (skipped: {})", fmt::join(why, ", "));
    }
    return out + fmt::format(" - sort: {} - % of one host CPU, rates per second",
                             sort_key_name(view.key));
}

std::string totals_line(const std::vector<Row>& rows) {
    Row t;
    for (const auto& r : rows) {
        t.rss += r.rss;
        if (!r.has_rates) continue;
        t.cpu_pct += r.cpu_pct, t.overhead_pct += r.overhead_pct, t.steal_pct += r.steal_pct;
        t.disk_read_bps += r.disk_read_bps, t.disk_write_bps += r.disk_write_bps;
        t.net_rx_bps += r.net_rx_bps, t.net_tx_bps += r.net_tx_bps, t.exits_ps += r.exits_ps;
    }
    return fmt::format(
        "total: CPU {:.1f}% (ovh {:.1f}%), steal {:.1f}%, disk r/w {}/{}, "
        "net rx/tx {}/{}, exits {}, rss {}",
        t.cpu_pct, t.overhead_pct, t.steal_pct, human_rate(t.disk_read_bps),
        human_rate(t.disk_write_bps), human_rate(t.net_rx_bps), human_rate(t.net_tx_bps),
        human_count(t.exits_ps), human_rate(double(t.rss)));
}

}  // namespace

std::string format_table(const std::vector<Row>& rows, const View& view) {
    std::vector<Column> columns(std::begin(kColumns), std::end(kColumns));
    auto fixed = [&] {
        unsigned w = 0;
        for (const auto& c : columns) w += 1 + c.width;
        return w;
    };
    // Narrow terminal: drop columns, least useful first, until a short name fits.
    while (view.width && kMinName + fixed() > view.width) {
        auto it = columns.end();
        for (auto c = columns.begin(); c != columns.end(); ++c)
            if (c->drop_order && (it == columns.end() || c->drop_order < it->drop_order)) it = c;
        if (it == columns.end()) break;
        columns.erase(it);
    }
    std::vector<std::string> names;
    size_t longest = 0;
    for (const auto& r : rows)
        longest = std::max(longest, names.emplace_back(printable(r.name)).size());
    unsigned name_w = std::max<unsigned>(kMinName, static_cast<unsigned>(longest));
    if (view.width)  // what the columns leave (at least kMinName unless no column can go)
        name_w = std::min(name_w, std::max(4u, view.width - std::min(view.width, fixed())));

    std::vector<std::string> lines{title_line(rows, view), totals_line(rows)};
    std::string titles = fmt::format("{:<{}}", "VM", name_w);
    for (const auto& c : columns) titles += fmt::format(" {:>{}}", c.title, c.width);
    lines.push_back(std::move(titles));

    size_t shown = rows.size();
    const size_t room = view.height > lines.size() ? view.height - lines.size() : 0;
    if (view.height && rows.size() > room) shown = room ? room - 1 : 0;
    for (size_t i = 0; i < shown; ++i) {
        std::string name = names[i];
        if (name.size() > name_w) name = name.substr(0, name_w - 1) + "~";
        std::string line = fmt::format("{:<{}}", name, name_w);
        for (const auto& c : columns) line += fmt::format(" {:>{}}", c.cell(rows[i]), c.width);
        lines.push_back(std::move(line));
    }
    if (shown < rows.size() && room)
        lines.push_back(fmt::format("... {} more (sorted by {})", rows.size() - shown,
                                    sort_key_name(view.key)));
    if (view.height && lines.size() > view.height) lines.resize(view.height);

    std::string out;
    for (auto& line : lines) {
        if (view.width && line.size() > view.width) line.resize(view.width);
        out += line + "\n";
    }
    return out;
}

}  // namespace rv::app::top
