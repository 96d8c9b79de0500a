// Thin RAII wrappers over the KVM API: Kvm -> VmFd -> VcpuFd.
// Nothing above this layer issues KVM ioctls directly.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/fd.h"

namespace rv::kvm {

class VmFd;
class VcpuFd;

class Kvm {
public:
    // Opens /dev/kvm (or path) and checks the API version.
    static Result<Kvm> open(const std::string& path = "/dev/kvm");

    int fd() const { return m_fd.get(); }
    Result<int> check_extension(int cap) const;
    Result<size_t> vcpu_mmap_size() const;
    Result<std::vector<kvm_cpuid_entry2>> supported_cpuid() const;
    // Upper bound of vCPUs per VM (KVM_CAP_MAX_VCPUS, else NR_VCPUS).
    unsigned max_vcpus() const;
    Result<VmFd> create_vm() const;

private:
    explicit Kvm(Fd fd) : m_fd(std::move(fd)) {}
    Fd m_fd;
};

class VmFd {
public:
    int fd() const { return m_fd.get(); }

    Result<void> set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size,
                                        void* host, uint32_t flags = 0) const;
    // KVM_GET_DIRTY_LOG: the pages of `slot` (registered with
    // KVM_MEM_LOG_DIRTY_PAGES) the guest wrote since the last call, one bit
    // per 4 KiB page; the log is cleared as it is read.
    Result<std::vector<uint64_t>> get_dirty_log(uint32_t slot, uint64_t pages) const;
    Result<void> set_tss_address(uint64_t addr) const;
    Result<void> set_identity_map_address(uint64_t addr) const;
    Result<void> create_irqchip() const;
    Result<void> create_pit2() const;
    Result<void> set_irq_line(uint32_t irq, bool level) const;
    Result<void> register_irqfd(int event_fd, uint32_t gsi, int resample_fd = -1) const;
    // len 0 matches an access of any width (KVM_CAP_IOEVENTFD_ANY_LENGTH).
    Result<void> register_ioeventfd(int event_fd, uint64_t addr, uint32_t len, bool pio,
                                    std::optional<uint64_t> datamatch = std::nullopt) const;
    Result<void> unregister_ioeventfd(int event_fd, uint64_t addr, uint32_t len, bool pio,
                                      std::optional<uint64_t> datamatch = std::nullopt) const;
    // Coalesced MMIO zones: guest writes inside [addr, addr + size) no longer
    // exit to user space; KVM appends them to the VM's CoalescedRing, and the
    // VMM applies them later (reads still exit).
    Result<void> register_coalesced_mmio(uint64_t addr, uint32_t size) const;
    Result<void> unregister_coalesced_mmio(uint64_t addr, uint32_t size) const;
    // Replaces the whole GSI routing table (KVM_SET_GSI_ROUTING).
    Result<void> set_gsi_routing(std::span<const kvm_irq_routing_entry> entries) const;
    Result<void> set_clock(uint64_t ns) const;
    // The clock as it was at wall-clock time `realtime_ns`, advanced by the
    // wall-clock time since (KVM_CLOCK_REALTIME; Linux 5.16+).
    Result<void> set_clock_realtime(uint64_t ns, uint64_t realtime_ns) const;
    // The guest's kvmclock (KVM_GET_CLOCK), in ns: saved when the VM pauses
    // and written back on resume, so guest time does not jump by the pause.
    Result<uint64_t> get_clock() const;
    Result<VcpuFd> create_vcpu(unsigned id, size_t mmap_size) const;

private:
    friend class Kvm;
    explicit VmFd(Fd fd) : m_fd(std::move(fd)) {}
    Fd m_fd;
};

// Why a vCPU stopped running guest code.
struct VcpuExit {
    enum class Kind {
        IoIn,
        IoOut,
        MmioRead,
        MmioWrite,
        Hlt,
        Shutdown,      // triple fault, or reset
        SystemEvent,   // KVM_EXIT_SYSTEM_EVENT (e.g. PSCI-like shutdown/reset)
        Interrupted,   // EINTR: a signal asked the vCPU to return to user space
        FailEntry,
        InternalError,
        Unknown,
    };
    Kind kind{Kind::Unknown};
    uint64_t address{0};          // port or MMIO address
    std::span<uint8_t> data;      // inside kvm_run: read results are written here
    uint32_t size{0};             // access width in bytes
    uint32_t count{1};            // string PIO (rep ins/outs): data holds count * size bytes
    uint32_t reason{0};           // raw exit_reason, for messages
    uint64_t detail{0};           // hardware entry failure reason / suberror / event type
};

class VcpuFd {
public:
    VcpuFd(VcpuFd&& other) noexcept;
    VcpuFd& operator=(VcpuFd&&) = delete;
    VcpuFd(const VcpuFd&) = delete;
    ~VcpuFd();

    unsigned id() const { return m_id; }
    int fd() const { return m_fd.get(); }

    // Runs the vCPU until an exit. For IoIn/MmioRead, fill exit.data before
    // the next run(). EINTR is an exit (Interrupted), not an error.
    Result<VcpuExit> run();

    // Makes the next (or current) KVM_RUN return to user space at once.
    void set_immediate_exit(bool value);

    Result<kvm_regs> get_regs() const;
    Result<void> set_regs(const kvm_regs& regs) const;
    Result<kvm_sregs> get_sregs() const;
    Result<void> set_sregs(const kvm_sregs& sregs) const;
    Result<void> set_fpu(const kvm_fpu& fpu) const;
    // XCR0 (KVM_SET_XCRS; needs KVM_CAP_XCRS).
    Result<void> set_xcr0(uint64_t value) const;
    Result<uint64_t> get_xcr0() const;
    Result<void> set_cpuid(std::span<const kvm_cpuid_entry2> entries) const;
    Result<void> set_msrs(std::span<const std::pair<uint32_t, uint64_t>> msrs) const;
    // Tells the guest's kvmclock it was stopped (KVM_KVMCLOCK_CTRL), so its
    // soft-lockup watchdog does not take a pause for a hang. Fails (EINVAL)
    // while the guest has not set up kvmclock on this vCPU.
    Result<void> kvmclock_ctrl() const;
    // Cumulative KVM statistics of this vCPU (KVM_GET_STATS_FD): exits,
    // io_exits, mmio_exits, halt_exits, irq_injections, ... by name. From
    // any thread, at once: the stats fd is opened with the vCPU, because
    // KVM_GET_STATS_FD itself (as every vCPU ioctl) waits for the vCPU's
    // mutex, which KVM_RUN holds until the next exit to user space; a
    // guest halted waiting for the event loop would never let it go.
    Result<std::vector<std::pair<std::string, uint64_t>>> stats() const;
    Result<kvm_lapic_state> get_lapic() const;
    Result<void> set_lapic(const kvm_lapic_state& lapic) const;

private:
    friend class VmFd;
    VcpuFd(Fd fd, unsigned id, kvm_run* run, size_t run_size, Fd stats_fd, int stats_errno)
        : m_fd(std::move(fd)),
          m_id(id),
          m_run(run),
          m_run_size(run_size),
          m_stats_fd(std::move(stats_fd)),
          m_stats_errno(stats_errno) {}

    Fd m_fd;
    unsigned m_id{0};
    kvm_run* m_run{nullptr};
    size_t m_run_size{0};
    Fd m_stats_fd;         // KVM_GET_STATS_FD's, taken before the vCPU first runs
    int m_stats_errno{0};  // why there is none
};

}  // namespace rv::kvm
