// How a VM shares the host's CPUs, and its weight in the host's disk I/O:
// machine-config's ringvisor extensions (cpu_weight, cpu_max, cpuset,
// io_weight) and the --cpu-weight / --cpu-max / --cpuset / --io-weight flags;
// carried out by the VM's cgroup (vmm/cgroup.h). Plain data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace rv {

// The CPU policy of a VM (machine-config's ringvisor extensions and the
// --cpu-weight / --cpu-max / --cpuset flags).
struct CpuPolicy {
    static constexpr uint32_t kMinWeight = 1, kMaxWeight = 10000, kDefaultWeight = 100;
    std::optional<uint32_t> weight;  // cgroup v2's cpu.weight scale (v1: shares = weight * 1024 / 100)
    struct Max {
        uint64_t quota_us{0};   // CPU time per period, over all the VM's threads
        uint64_t period_us{0};  // 1000..1000000
        bool operator==(const Max&) const = default;
    };
    std::optional<Max> max;
    std::optional<std::string> cpuset;  // host CPUs, "0-3,6"
    // The VM's share of contended disk I/O against other cgroups, same scale
    // as weight (cgroup v2 io.weight "default N"; v1 blkio.weight, 10..1000
    // = N * 5 clamped, systemd's mapping). Kept here, with the CPU, because
    // the same cgroup carries it and the same PATCH changes it.
    std::optional<uint32_t> io_weight;
    // Caps on the VM's disk I/O at the host's block devices its drives live
    // on (cgroup v2 io.max; v1 blkio.throttle.*): bytes and operations per
    // second, read and write; a cap not given is none. A PATCH replaces the
    // whole set. The drives' own rate limiters are the finer tool; this one
    // also holds what the VMM does on the guest's behalf at the device.
    struct IoMax {
        std::optional<uint64_t> rbps, wbps, riops, wiops;
        bool operator==(const IoMax&) const = default;
    };
    std::optional<IoMax> io_max;
    bool empty() const { return !weight && !max && !cpuset && !io_weight && !io_max; }
    // A PATCH: the parts `update` gives replace ours.
    void merge(const CpuPolicy& update) {
        if (update.weight) weight = update.weight;
        if (update.max) max = update.max;
        if (update.cpuset) cpuset = update.cpuset;
        if (update.io_weight) io_weight = update.io_weight;
        if (update.io_max) io_max = update.io_max;
    }
    bool operator==(const CpuPolicy&) const = default;
};

// "QUOTA/PERIOD" in microseconds, e.g. "25000/100000". InvalidInput names the problem.
Result<CpuPolicy::Max> parse_cpu_max(std::string_view text);
std::string format_cpu_max(const CpuPolicy::Max& max);
// "rbps=N,wbps=N,riops=N,wiops=N", any of them at least once, each 1..2^62.
Result<CpuPolicy::IoMax> parse_io_max(std::string_view text);
std::string format_io_max(const CpuPolicy::IoMax& max);  // the same form
// A CPU list as the kernel writes it: "0", "0-3", "0-3,6,8-9". Checks the
// syntax only (the kernel checks the CPUs exist when it is written).
Result<void> check_cpu_list(std::string_view text);
Result<void> check_policy(const CpuPolicy& policy);

}  // namespace rv
