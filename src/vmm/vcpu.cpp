#include "vmm/vcpu.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include "base/log.h"

namespace rv {

namespace {
constexpr int kKickSignal = SIGUSR1;
void on_kick_signal(int) {}
}  // namespace

void Vcpu::install_kick_signal() {
    struct sigaction sa {};
    sa.sa_handler = on_kick_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    ::sigaction(kKickSignal, &sa, nullptr);
}

void Vcpu::start() {
    m_thread = std::thread([this] { thread_main(); });
}

void Vcpu::kick() {
    m_fd.set_immediate_exit(true);
    if (m_started.load()) ::pthread_kill(m_native.load(), kKickSignal);
    std::lock_guard lock(m_park_lock);
    m_park_cv.notify_all();  // a parked thread re-checks exiting()
}

void Vcpu::request_pause() {
    {
        std::lock_guard lock(m_park_lock);
        m_pause_requested = true;
    }
    kick();
}

void Vcpu::wait_parked() {
    std::unique_lock lock(m_park_lock);
    m_park_cv.wait(lock, [&] { return m_parked || m_stopped || !m_started.load(); });
}

void Vcpu::resume() {
    std::lock_guard lock(m_park_lock);
    m_pause_requested = false;
    m_park_cv.notify_all();
}

void Vcpu::park() {
    std::unique_lock lock(m_park_lock);
    m_parked = true;
    m_park_cv.notify_all();
    m_park_cv.wait(lock, [&] { return !m_pause_requested || m_control.exiting(); });
    m_parked = false;
}

std::optional<ThreadTimes> Vcpu::exit_times() const {
    std::lock_guard lock(m_park_lock);
    return m_exit_times;
}

void Vcpu::join() {
    if (m_thread.joinable()) m_thread.join();
}

void Vcpu::thread_main() {
    m_native.store(::pthread_self());
    m_tid.store(::gettid());
    m_started.store(true);
    auto name = fmt::format("vcpu{}", m_fd.id());
    ::pthread_setname_np(::pthread_self(), name.c_str());
    auto stopped = [this] {
        auto times = thread_times(::gettid());
        std::lock_guard lock(m_park_lock);
        m_exit_times = times;
        m_stopped = true;
        m_park_cv.notify_all();
    };
    while (!m_control.exiting()) {
        bool pause;
        {
            std::lock_guard lock(m_park_lock);
            pause = m_pause_requested;
        }
        if (pause) {
            park();
            continue;
        }
        auto exit = m_fd.run();
        if (!exit) {
            m_control.request_exit(VmExitReason::Error,
                                   fmt::format("vCPU {}: {}", m_fd.id(), exit.error().message()));
            break;
        }
        if (!handle_exit(*exit)) break;
    }
    stopped();
}

size_t apply_posted_writes(kvm::CoalescedRing& ring, const PioBus& pio, const MmioBus& mmio) {
    return ring.drain([&](const kvm::CoalescedRing::Write& w) {
        if (w.pio)
            pio.write(PioAddress(w.address), w.data);
        else
            mmio.write(MmioAddress(w.address), w.data);
    });
}

bool Vcpu::handle_exit(const kvm::VcpuExit& exit) {
    using Kind = kvm::VcpuExit::Kind;
    // Writes the guest made before this exit, buffered by KVM, land first:
    // this exit's access may depend on them (the ordering a guest expects).
    if (m_posted) apply_posted_writes(*m_posted, m_pio, m_mmio);
    if (exit.kind != Kind::Interrupted) m_recorder.record(exit);
    switch (exit.kind) {
        case Kind::IoIn:
        case Kind::IoOut: {
            m_stats.pio_exits.fetch_add(1, std::memory_order_relaxed);
            // String I/O (rep ins/outs) hands over count elements at once.
            for (uint32_t i = 0; i < exit.count; ++i) {
                auto element = exit.data.subspan(size_t(i) * exit.size, exit.size);
                if (exit.kind == Kind::IoIn)
                    m_pio.read(PioAddress(exit.address), element);
                else
                    m_pio.write(PioAddress(exit.address), element);
            }
            if (exit.kind == Kind::IoIn) m_recorder.set_last_value(exit.data);
            return true;
        }
        case Kind::MmioRead:
            m_stats.mmio_exits.fetch_add(1, std::memory_order_relaxed);
            m_mmio.read(MmioAddress(exit.address), exit.data);
            m_recorder.set_last_value(exit.data);
            return true;
        case Kind::MmioWrite:
            m_stats.mmio_exits.fetch_add(1, std::memory_order_relaxed);
            m_mmio.write(MmioAddress(exit.address), exit.data);
            return true;
        case Kind::Interrupted:
            m_fd.set_immediate_exit(false);
            return true;
        case Kind::Hlt:
            // Only without an in-kernel irqchip: nothing can wake us, so stop.
            m_control.request_exit(VmExitReason::PowerOff,
                                   fmt::format("vCPU {} halted", m_fd.id()));
            return false;
        case Kind::Shutdown: {
            // A triple fault. Resets the guest asks for go through the ACPI
            // reset register, port 0xCF9 or the i8042; a kernel that crashes
            // past its own exception handlers ends here. Vm::request_exit
            // turns this into a panic after a panic banner, or a reset with
            // --on-triple-fault=reset. On AMD (SVM) KVM has already put the
            // vCPU in its reset state (rip 0xfff0, paging off) when it
            // reports the shutdown, so its registers say nothing then; the
            // crash report (Vm::run) still has the last exits and the other
            // vCPUs' registers.
            auto regs = m_fd.get_regs();
            auto sregs = m_fd.get_sregs();
            const bool reset_state = regs && sregs && regs->rip == 0xfff0 && !(sregs->cr0 & 1);
            std::string where = "registers already reset by KVM";
            if (regs && sregs && !reset_state)
                where = fmt::format("rip {:#x} rsp {:#x} cr2 {:#x} cr3 {:#x}", regs->rip,
                                    regs->rsp, sregs->cr2, sregs->cr3);
            m_control.request_exit(VmExitReason::Crash,
                                   fmt::format("vCPU {}: triple fault ({})", m_fd.id(), where));
            return false;
        }
        case Kind::SystemEvent:
            if (exit.detail == KVM_SYSTEM_EVENT_RESET) {
                m_control.request_exit(VmExitReason::Reset, "guest requested reset");
            } else if (exit.detail == KVM_SYSTEM_EVENT_SHUTDOWN) {
                m_control.request_exit(VmExitReason::PowerOff, "guest requested shutdown");
            } else {
                m_control.request_exit(VmExitReason::Error, fmt::format("vCPU {}: system event {}",
                                                                        m_fd.id(), exit.detail));
            }
            return false;
        case Kind::FailEntry:
            m_control.request_exit(VmExitReason::Error,
                                   fmt::format("vCPU {}: VM entry failed (hardware reason {:#x})",
                                               m_fd.id(), exit.detail));
            return false;
        case Kind::InternalError:
            m_control.request_exit(
                VmExitReason::Error,
                fmt::format("vCPU {}: KVM internal error (suberror {})", m_fd.id(), exit.detail));
            return false;
        case Kind::Unknown:
            m_control.request_exit(
                VmExitReason::Error,
                fmt::format("vCPU {}: unhandled KVM exit reason {}", m_fd.id(), exit.reason));
            return false;
    }
    return true;
}

}  // namespace rv
