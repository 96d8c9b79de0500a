// CPU time of one of our threads, from the kernel's own counters:
// /proc/self/task/TID/schedstat ("exec_ns run_delay_ns slices") and .../stat
// (guest_time, field 43, in clock ticks). Used by metrics and accounting.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace rv {

struct ThreadTimes {
    uint64_t cpu_ns{0};        // user + system (schedstat's exec runtime)
    uint64_t guest_ns{0};      // of which in the guest (stat's guest_time)
    uint64_t run_delay_ns{0};  // runnable but not running: what the guest sees as steal
    bool operator==(const ThreadTimes&) const = default;
};

std::optional<ThreadTimes> parse_thread_times(std::string_view stat, std::string_view schedstat,
                                              uint64_t ns_per_tick);
// utime + stime of the whole process, live and ended threads (/proc/self/stat).
std::optional<uint64_t> parse_process_cpu_ns(std::string_view stat, uint64_t ns_per_tick);
uint64_t ns_per_clock_tick();

// A thread of this process, now; nullopt once it has ended.
std::optional<ThreadTimes> thread_times(pid_t tid);
std::optional<uint64_t> process_cpu_ns();

}  // namespace rv
