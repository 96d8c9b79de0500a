#include "app/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <map>

#include <nlohmann/json.hpp>

#include "app/accounting_json.h"

namespace rv::app::report {

namespace {

using nlohmann::json;

Error input(std::string message) { return Error(std::move(message), 0, ErrorKind::InvalidInput); }

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

}  // namespace

Result<std::vector<Record>> parse_ledger(std::istream& in, std::string_view name) {
    std::vector<Record> out;
    std::string line;
    for (size_t number = 1; std::getline(in, line); ++number) {
        if (line.empty()) continue;
        auto j = json::parse(line, nullptr, false);
        auto where = [&](std::string_view why) {
            return std::unexpected(input(fmt::format("{}:{}: {}", name, number, why)));
        };
        if (j.is_discarded()) return where("not JSON");
        if (!j.is_object() || !j.contains("utc_ms") || !j["utc_ms"].is_number_unsigned() ||
            !j.contains("vm") || !j["vm"].is_string())
            return where("not a ledger record (no vm or utc_ms)");
        auto it = j.find("interval");
        if (it == j.end()) continue;
        if (!it->is_object() || !it->contains("seconds") || !(*it)["seconds"].is_number())
            return where("an interval without seconds");
        const json& iv = *it;
        Record r;
        r.vm = j["vm"].get<std::string>();
        r.pid = j.value("pid", int64_t{0});
        r.end_ms = j["utc_ms"].get<uint64_t>();
        r.seconds = iv["seconds"].get<double>();
        if (r.seconds < 0) return where("a negative interval");
        r.guest_ms = json_u64(iv, "guest_cpu_ms");
        r.overhead_ms = json_u64(iv, "vmm_overhead_cpu_ms");
        r.steal_ms = json_u64(iv, "steal_ms");
        if (auto e = iv.find("exits"); e != iv.end() && e->is_object()) r.exits = json_u64(*e, "exits");
        r.read_bytes = json_sum_field(iv, "block", "read_bytes");
        r.write_bytes = json_sum_field(iv, "block", "write_bytes");
        r.reads = json_sum_field(iv, "block", "reads");
        r.writes = json_sum_field(iv, "block", "writes");
        r.requests = json_sum_field(iv, "block", "requests");
        r.rx_bytes = json_sum_field(iv, "net", "rx_bytes");
        r.tx_bytes = json_sum_field(iv, "net", "tx_bytes");
        r.rx_packets = json_sum_field(iv, "net", "rx_packets");
        r.tx_packets = json_sum_field(iv, "net", "tx_packets");
        r.rss = json_u64(j, "rss_bytes");
        out.push_back(std::move(r));
    }
    return out;
}

Result<uint64_t> parse_time(std::string_view text, uint64_t now_ms) {
    auto bad = [&] {
        return std::unexpected(input(fmt::format(
            "time '{}': use 2026-12-05T10:00:00Z, epoch milliseconds, or -90s/-30m/-2h/-1d", text)));
    };
    if (text.empty()) return bad();
    if (text[0] == '-') {
        uint64_t n = 0;
        const char* end = text.data() + text.size() - 1;
        auto [p, ec] = std::from_chars(text.data() + 1, end, n);
        if (ec != std::errc() || p != end) return bad();
        uint64_t unit = 0;
        switch (text.back()) {
            case 's': unit = 1000; break;
            case 'm': unit = 60'000; break;
            case 'h': unit = 3'600'000; break;
            case 'd': unit = 86'400'000; break;
            default: return bad();
        }
        return n * unit > now_ms ? 0 : now_ms - n * unit;
    }
    if (text.find('T') != std::string_view::npos) {
        std::tm tm{};
        std::string s(text);
        const char* rest = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
        if (!rest || std::string_view(rest) != "Z") return bad();
        time_t t = ::timegm(&tm);
        if (t < 0) return bad();
        return uint64_t(t) * 1000;
    }
    uint64_t ms = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc() || p != text.data() + text.size()) return bad();
    return ms;
}

double Totals::cpu_share() const {
    return seconds > 0 ? double(sum.guest_ms + sum.overhead_ms) / (seconds * 1000.0) : 0.0;
}

std::vector<Totals> summarize(const std::vector<Record>& records, uint64_t from_ms, uint64_t to_ms) {
    std::vector<Totals> out;
    std::map<std::pair<std::string, int64_t>, size_t> index;
    for (const auto& r : records) {
        if (r.end_ms <= from_ms || r.end_ms > to_ms) continue;
        auto [it, fresh] = index.try_emplace({r.vm, r.pid}, out.size());
        if (fresh) {
            Totals t;
            t.vm = r.vm;
            t.pid = r.pid;
            t.from_ms = UINT64_MAX;
            out.push_back(std::move(t));
        }
        Totals& t = out[it->second];
        const uint64_t start = r.end_ms - std::min<uint64_t>(r.end_ms, uint64_t(r.seconds * 1000.0));
        t.from_ms = std::min(t.from_ms, start);
        t.to_ms = std::max(t.to_ms, r.end_ms);
        t.seconds += r.seconds;
        ++t.records;
        Record& s = t.sum;
        s.guest_ms += r.guest_ms, s.overhead_ms += r.overhead_ms, s.steal_ms += r.steal_ms;
        s.exits += r.exits, s.read_bytes += r.read_bytes, s.write_bytes += r.write_bytes;
        s.reads += r.reads, s.writes += r.writes, s.requests += r.requests;
        s.rx_bytes += r.rx_bytes, s.tx_bytes += r.tx_bytes;
        s.rx_packets += r.rx_packets, s.tx_packets += r.tx_packets;
        s.rss = std::max(s.rss, r.rss);
    }
    return out;
}

std::string utc_iso(uint64_t ms) {
    time_t t = time_t(ms / 1000);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string format_table(const std::vector<Totals>& totals) {
    if (totals.empty()) return "no ledger records in the range\n";
    std::string out = fmt::format(
        "{:<16} {:>7} {:<20} {:<20} {:>8} {:>9} {:>9} {:>9} {:>6} {:>11} {:>11} {:>8} {:>11} {:>11} "
        "{:>10} {:>10} {:>11} {:>9}\n",
        "VM", "PID", "FROM", "TO", "SECONDS", "GUEST-S", "OVHD-S", "STEAL-S", "CPU", "READ-B",
        "WRITE-B", "REQS", "RX-B", "TX-B", "RX-PKT", "TX-PKT", "EXITS", "MAX-RSS-MB");
    for (const auto& t : totals)
        out += fmt::format(
            "{:<16} {:>7} {:<20} {:<20} {:>8.1f} {:>9.2f} {:>9.2f} {:>9.2f} {:>6.3f} {:>11} {:>11} "
            "{:>8} {:>11} {:>11} {:>10} {:>10} {:>11} {:>9.1f}\n",
            t.vm, t.pid, utc_iso(t.from_ms), utc_iso(t.to_ms), t.seconds, t.sum.guest_ms / 1000.0,
            t.sum.overhead_ms / 1000.0, t.sum.steal_ms / 1000.0, t.cpu_share(), t.sum.read_bytes,
            t.sum.write_bytes, t.sum.requests, t.sum.rx_bytes, t.sum.tx_bytes, t.sum.rx_packets,
            t.sum.tx_packets, t.sum.exits, t.sum.rss / 1048576.0);
    return out;
}

std::string format_csv(const std::vector<Totals>& totals) {
    std::string out =
        "vm,pid,from,to,seconds,guest_cpu_ms,vmm_overhead_cpu_ms,steal_ms,cpu_share,read_bytes,"
        "write_bytes,reads,writes,requests,rx_bytes,tx_bytes,rx_packets,tx_packets,exits,max_rss_bytes\r\n";
    for (const auto& t : totals)
        out += fmt::format("{},{},{},{},{:.3f},{},{},{},{:.4f},{},{},{},{},{},{},{},{},{},{},{}\r\n",
                           csv_field(t.vm), t.pid, utc_iso(t.from_ms), utc_iso(t.to_ms), t.seconds,
                           t.sum.guest_ms, t.sum.overhead_ms, t.sum.steal_ms, t.cpu_share(),
                           t.sum.read_bytes, t.sum.write_bytes, t.sum.reads, t.sum.writes,
                           t.sum.requests, t.sum.rx_bytes, t.sum.tx_bytes, t.sum.rx_packets,
                           t.sum.tx_packets, t.sum.exits, t.sum.rss);
    return out;
}

}  // namespace rv::app::report
