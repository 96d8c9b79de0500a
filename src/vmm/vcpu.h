// One vCPU thread: runs KVM_RUN and serves PIO/MMIO exits synchronously on
// the buses. Stops when the VM is exiting.
#pragma once

#include <atomic>
#include <pthread.h>
#include <thread>

#include "bus/bus.h"
#include "kvm/kvm.h"
#include "vmm/vm_exit.h"

namespace rv {

struct VcpuStats {
    std::atomic<uint64_t> pio_exits{0};
    std::atomic<uint64_t> mmio_exits{0};
};

class Vcpu {
public:
    Vcpu(kvm::VcpuFd fd, const PioBus& pio, const MmioBus& mmio, VmControl& control)
        : m_fd(std::move(fd)), m_pio(pio), m_mmio(mmio), m_control(control) {}
    Vcpu(const Vcpu&) = delete;
    Vcpu& operator=(const Vcpu&) = delete;
    ~Vcpu() { join(); }

    kvm::VcpuFd& fd() { return m_fd; }
    const kvm::VcpuFd& fd() const { return m_fd; }
    const VcpuStats& stats() const { return m_stats; }

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
    VcpuStats m_stats;
    std::thread m_thread;
    std::atomic<pthread_t> m_native{};
    std::atomic<bool> m_started{false};
};

}  // namespace rv
