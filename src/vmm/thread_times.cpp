#include "vmm/thread_times.h"

#include <unistd.h>

#include <fmt/format.h>

#include <vector>

#include "base/fd.h"
#include "base/parse.h"

namespace rv {

namespace {

// The fields after the command name (field 2, which may hold spaces and
// parentheses): fields[0] is field 3.
std::optional<std::vector<uint64_t>> stat_fields(std::string_view stat) {
    auto close = stat.rfind(')');
    if (close == std::string_view::npos || close + 2 > stat.size()) return std::nullopt;
    std::vector<uint64_t> fields;
    std::string_view rest = stat.substr(close + 2);
    while (!rest.empty()) {
        auto end = rest.find_first_of(" \n");
        std::string_view f = rest.substr(0, end);
        // Field 3 is the state letter; everything we read is a number.
        fields.push_back(parse_u64(f).value_or(0));
        if (end == std::string_view::npos) break;
        rest = rest.substr(end + 1);
        if (!rest.empty() && rest.front() == '\n') break;
    }
    return fields;
}

}  // namespace

std::optional<ThreadTimes> parse_thread_times(std::string_view stat, std::string_view schedstat,
                                              uint64_t ns_per_tick) {
    auto fields = stat_fields(stat);
    if (!fields || fields->size() <= 40) return std::nullopt;
    auto sp = schedstat.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    auto sp2 = schedstat.find(' ', sp + 1);
    auto exec = parse_u64(schedstat.substr(0, sp));
    auto delay = parse_u64(schedstat.substr(sp + 1, sp2 == std::string_view::npos ? sp2 : sp2 - sp - 1));
    if (!exec || !delay) return std::nullopt;
    return ThreadTimes{*exec, (*fields)[40] * ns_per_tick, *delay};
}

std::optional<uint64_t> parse_process_cpu_ns(std::string_view stat, uint64_t ns_per_tick) {
    auto fields = stat_fields(stat);
    if (!fields || fields->size() <= 12) return std::nullopt;
    return ((*fields)[11] + (*fields)[12]) * ns_per_tick;
}

uint64_t ns_per_clock_tick() {
    static const uint64_t ns = 1'000'000'000ull / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
    return ns;
}

std::optional<ThreadTimes> thread_times(pid_t tid) {
    if (tid <= 0) return std::nullopt;
    auto stat = read_file(fmt::format("/proc/self/task/{}/stat", tid));
    auto sched = read_file(fmt::format("/proc/self/task/{}/schedstat", tid));
    if (!stat || !sched) return std::nullopt;
    return parse_thread_times(*stat, *sched, ns_per_clock_tick());
}

std::optional<uint64_t> process_cpu_ns() {
    auto stat = read_file("/proc/self/stat");
    if (!stat) return std::nullopt;
    return parse_process_cpu_ns(*stat, ns_per_clock_tick());
}

}  // namespace rv
