// Per-VM accounting for billing (issue 14): what the VM used, per vCPU and in
// total, taken from the kernel's own counters rather than estimated:
//   - guest CPU time per vCPU: the vCPU thread's guest_time (/proc stat);
//   - steal: the vCPU thread's run delay (schedstat: time it was runnable
//     but not running, which is what KVM's steal-time MSR tells the guest);
//   - VMM overhead CPU: the process's CPU time (every thread, live or
//     ended) minus the guest time: device emulation, exits, the event loop;
//   - exits by reason (KVM's per-vCPU statistics); per drive id (virtio-blk
//     and IDE) bytes read and written, reads, writes and requests; per NIC
//     id (virtio-net and e1000) bytes and packets each way; resident memory,
//     and the VM's cgroup usage (vcpus/ and vmm/) where it has one.
// A record has the totals since the VM started and, for a ledger line, the
// interval since the previous line. The ledger is a JSON-lines file that
// outlives the VM: one line per interval and a final one at exit, each
// fdatasync'ed, so a crash of the host loses at most one interval.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/fd.h"
#include "vmm/cgroup.h"
#include "vmm/event_loop.h"
#include "vmm/thread_times.h"

namespace rv {

class Vm;
struct DeviceInfo;

namespace accounting {

struct Sample {
    uint64_t utc_ms{0};
    std::chrono::steady_clock::time_point at{};
    struct Vcpu {
        unsigned id{0};
        ThreadTimes times;
        std::map<std::string, uint64_t> exits;  // KVM's exit counters by name
    };
    std::vector<Vcpu> vcpus;
    uint64_t process_cpu_ns{0};
    uint64_t rss_bytes{0};
    // Per device id: the counters that bill (bytes, requests, packets).
    std::map<std::string, std::map<std::string, uint64_t>> disks, nics;
    std::optional<cgroup::Usage> cgroup;
};

// Now, from /proc, KVM and the devices. `vcpu_times` has each vCPU's times
// where its thread can no longer be read (it ended: the VM is stopping).
Sample take_sample(const Vm& vm, cgroup::VmCgroup* cgroup,
                   const std::map<unsigned, ThreadTimes>& vcpu_times = {});

// The billed counters of `devices` (DeviceManager::devices()) into
// into.disks (virtio-blk drives, IDE disks) and into.nics (virtio-net,
// e1000), by device id; other devices and counters are left out.
void add_device_counters(const std::vector<DeviceInfo>& devices, Sample& into);

// {"vm", "kind", "utc_ms", "total": {...}, "interval": {...}} (no interval
// without `prev`). Milliseconds and counts; guest + overhead = process CPU.
nlohmann::json record(const Sample& now, const Sample* prev, std::string_view kind,
                      std::string_view vm_id);

class Ledger {
public:
    using Sampler = std::function<Sample()>;
    // InvalidInput if the file cannot be opened for appending. The timer
    // runs in the loop's control set (records flow while paused too).
    static Result<std::unique_ptr<Ledger>> open(const std::string& path,
                                                std::chrono::seconds interval, EventLoop& loop,
                                                std::string vm_id, Sampler sampler);
    ~Ledger();
    // A record now ("interval" or "final"), appended and fdatasync'ed.
    Result<void> write(std::string_view kind);
    uint64_t records() const { return m_records; }

private:
    Ledger(Fd file, Fd timer, EventLoop& loop, std::string vm_id, Sampler sampler)
        : m_file(std::move(file)), m_timer(std::move(timer)), m_loop(loop),
          m_vm_id(std::move(vm_id)), m_sampler(std::move(sampler)) {}
    Fd m_file;
    Fd m_timer;
    EventLoop& m_loop;
    std::string m_vm_id;
    Sampler m_sampler;
    std::optional<Sample> m_prev;
    uint64_t m_records{0};
};

}  // namespace accounting
}  // namespace rv
