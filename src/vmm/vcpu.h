// One vCPU thread: runs KVM_RUN and serves PIO/MMIO exits synchronously on
// the buses. Stops when the VM is exiting.
#pragma once

#include <atomic>
#include <pthread.h>
#include <thread>

#include "bus/bus.h"
#include "kvm/coalesced_ring.h"
#include "kvm/kvm.h"
#include "vmm/exit_recorder.h"
#include "vmm/vm_exit.h"

namespace rv {

// Applies the writes KVM buffered in `ring` (coalesced MMIO zones, see
// PciDevice::posted_write_ranges) to the buses, oldest first. Returns how
// many. Call with no device lock held.
size_t apply_posted_writes(kvm::CoalescedRing& ring, const PioBus& pio, const MmioBus& mmio);

struct VcpuStats {
    std::atomic<uint64_t> pio_exits{0};
    std::atomic<uint64_t> mmio_exits{0};
};

class Vcpu {
public:
    // posted: the VM's coalesced MMIO ring, or null without one; its writes
    // are applied before every exit is served.
    Vcpu(kvm::VcpuFd fd, const PioBus& pio, const MmioBus& mmio, VmControl& control,
         kvm::CoalescedRing* posted = nullptr)
        : m_fd(std::move(fd)), m_pio(pio), m_mmio(mmio), m_control(control), m_posted(posted) {}
    Vcpu(const Vcpu&) = delete;
    Vcpu& operator=(const Vcpu&) = delete;
    ~Vcpu() { join(); }

    kvm::VcpuFd& fd() { return m_fd; }
    const kvm::VcpuFd& fd() const { return m_fd; }
    const VcpuStats& stats() const { return m_stats; }
    // The last exits served in user space; read only once the thread has stopped.
    const ExitRecorder& recorder() const { return m_recorder; }

    void start();
    // Asks the thread to leave KVM_RUN promptly; it then checks exiting().
    void kick();
    void join();

    // Installs the no-op signal handler used by kick(); call once per process.
    static void install_kick_signal();

    // Serves one exit; returns false when the VM must stop. Public for tests.
    bool handle_exit(const kvm::VcpuExit& exit);

private:
    void thread_main();

    kvm::VcpuFd m_fd;
    const PioBus& m_pio;
    const MmioBus& m_mmio;
    VmControl& m_control;
    kvm::CoalescedRing* m_posted;
    VcpuStats m_stats;
    ExitRecorder m_recorder;
    std::thread m_thread;
    std::atomic<pthread_t> m_native{};
    std::atomic<bool> m_started{false};
};

}  // namespace rv
