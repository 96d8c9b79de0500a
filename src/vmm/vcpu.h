// One vCPU thread: runs KVM_RUN and serves PIO/MMIO exits synchronously on
// the buses. Stops when the VM is exiting.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <sys/types.h>
#include <thread>

#include "bus/bus.h"
#include "kvm/coalesced_ring.h"
#include "kvm/kvm.h"
#include "vmm/exit_recorder.h"
#include "vmm/thread_times.h"
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
    // The thread's id (0 before it starts): its CPU and guest time are in
    // /proc/self/task/<tid>/stat.
    pid_t tid() const { return m_tid.load(); }
    // The thread's times as it ended (accounting's final record: an ended
    // thread's /proc entry is gone); nullopt while it runs.
    std::optional<ThreadTimes> exit_times() const;
    // The last exits served in user space; read only once the thread has stopped.
    const ExitRecorder& recorder() const { return m_recorder; }

    void start();
    // Asks the thread to leave KVM_RUN promptly; it then checks exiting()
    // (and a parked thread wakes up to check it too).
    void kick();
    void join();

    // Pausing: the thread leaves KVM_RUN and parks until resume(). Any
    // thread; wait_parked() returns once it is parked (or has stopped).
    void request_pause();
    void wait_parked();
    void resume();

    // Installs the no-op signal handler used by kick(); call once per process.
    static void install_kick_signal();

    // Serves one exit; returns false when the VM must stop. Public for tests.
    bool handle_exit(const kvm::VcpuExit& exit);

private:
    void thread_main();
    void park();

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
    std::atomic<pid_t> m_tid{0};
    mutable std::mutex m_park_lock;  // guards the four below
    std::condition_variable m_park_cv;
    bool m_pause_requested{false};
    bool m_parked{false};
    bool m_stopped{false};  // the thread has returned
    std::optional<ThreadTimes> m_exit_times;
};

}  // namespace rv
