#include "vmm/vm.h"

#include <ctime>
#include <utility>

#include "base/log.h"
#include "devices/pci/pci_device.h"
#include "devices/pci/pci_root.h"
#include "vmm/crash_report.h"
#include "vmm/msi_router.h"
#include "vmm/stats.h"

namespace rv {

Vm::Vm(const VmConfig& config, kvm::Kvm kvm, kvm::VmFd vm, GuestMemory memory, EventLoop& loop,
       ConsoleSink console, ExitHandler on_exit)
    : m_config(config),
      m_kvm(std::move(kvm)),
      m_vm(std::move(vm)),
      m_memory(std::move(memory)),
      m_loop(loop),
      m_console(std::move(console)),
      m_on_exit(std::move(on_exit)),
      m_msi(std::make_unique<KvmMsiRouter>(m_vm)) {}

Vm::~Vm() {
    {
        std::lock_guard lock(m_outcome_lock);
        m_on_exit = nullptr;  // whoever destroys us knows
    }
    request_exit(VmExitReason::Quit, "the VM was destroyed");
    for (auto& v : m_vcpus) v->kick();
    m_vcpus.clear();  // joins the threads before devices go away
    // Devices stop while the loop, memory and MSI router they use still exist.
    m_devices.reset();
}

uint64_t Vm::msi_interrupts() const { return m_msi->triggered(); }

uint64_t Vm::posted_writes() const { return m_posted ? m_posted->drained() : 0; }

void Vm::flush_posted_writes() {
    if (m_posted) apply_posted_writes(*m_posted, m_pio, m_mmio);
}

void Vm::on_bar_mapped(const PciDevice& device, const PciBarInfo& bar, uint64_t address,
                       bool mapped) {
    if (bar.io) return;
    // Doorbells: a guest write there signals the device's eventfd in KVM,
    // without an exit to user space (any width, any value).
    for (const PciIoEvent& e : device.ioevents(bar.index)) {
        if (e.offset >= bar.size) continue;
        auto done = mapped ? m_vm.register_ioeventfd(e.fd, address + e.offset, 0, false)
                           : m_vm.unregister_ioeventfd(e.fd, address + e.offset, 0, false);
        // Without the ioeventfd the kick still arrives, through an MMIO exit.
        if (!done)
            log::warn("{}: ioeventfd at {:#x}: {}", device.name(), address + e.offset,
                      done.error().message());
    }
    if (m_coalesced_page <= 0) return;
    for (const PciBarRange& r : device.posted_write_ranges(bar.index)) {
        if (r.size == 0 || r.offset >= bar.size || r.size > bar.size - r.offset) continue;
        const uint64_t at = address + r.offset;
        const auto size = static_cast<uint32_t>(r.size);
        // Without a zone the writes simply exit as usual: slower, not wrong.
        auto done = mapped ? m_vm.register_coalesced_mmio(at, size)
                           : m_vm.unregister_coalesced_mmio(at, size);
        if (!done)
            log::warn("{}: posted writes at {:#x}: {}", device.name(), at, done.error().message());
    }
}

// On a vCPU thread (or the event loop, for virtio-console), for every byte
// the guest writes to its console: watched for a panic, then handed on.
void Vm::on_console_output(std::span<const uint8_t> bytes) {
    ConsoleMonitor::Event event;
    {
        std::lock_guard lock(m_output_lock);
        event = m_monitor.feed(bytes);
        if (m_console) m_console(bytes);
    }
    if (event == ConsoleMonitor::Event::PanicEnded)
        request_exit(VmExitReason::Panic, *m_monitor.panic_line());
}

void Vm::start() {
    if (m_started) return;
    m_started = true;
    Vcpu::install_kick_signal();
    for (auto& v : m_vcpus) v->start();
}

Result<void> Vm::pause() {
    if (!m_started) return not_allowed_error("the VM has not started");
    if (m_paused) return {};
    for (auto& v : m_vcpus) v->request_pause();
    for (auto& v : m_vcpus) v->wait_parked();
    // No device works while paused: their fds wait in the loop's device set.
    m_loop.set_devices_paused(true);
    m_paused_clock = RV_TRY(m_vm.get_clock());
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    m_paused_realtime = static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ull +
                        static_cast<uint64_t>(now.tv_nsec);
    m_paused = true;
    log::info("VM paused");
    return {};
}

Result<void> Vm::resume() {
    if (!m_paused) return {};
    // Guest time continues from the pause: the kvmclock is put back (or,
    // once after a restore asked for it, advanced by the wall-clock time
    // since the snapshot). The guest is told it was stopped.
    if (m_paused_clock && m_advance_clock && m_saved_realtime)
        RV_TRY_VOID(m_vm.set_clock_realtime(*m_paused_clock, *m_saved_realtime));
    else if (m_paused_clock)
        RV_TRY_VOID(m_vm.set_clock(*m_paused_clock));
    m_advance_clock = false;
    for (auto& v : m_vcpus) (void)v->fd().kvmclock_ctrl();  // EINVAL before the guest set up kvmclock
    m_loop.set_devices_paused(false);
    for (auto& v : m_vcpus) v->resume();
    m_paused = false;
    // First run after a restore or a migration: a NIC announces its new
    // place (gratuitous packets from the guest, VIRTIO_NET_F_GUEST_ANNOUNCE).
    if (std::exchange(m_loaded, false)) m_devices->resumed_elsewhere();
    log::info("VM resumed");
    return {};
}

void Vm::request_exit(VmExitReason reason, std::string message) {
    ExitHandler on_exit;
    {
        std::lock_guard lock(m_outcome_lock);
        if (m_outcome) return;
        on_exit = m_on_exit;
        if (reason == VmExitReason::Reset || reason == VmExitReason::Crash) {
            // A reset (or a triple fault) right after a panic banner is the
            // panic=N reboot.
            std::lock_guard out(m_output_lock);
            if (m_monitor.panicked()) {
                reason = VmExitReason::Panic;
                message = *m_monitor.panic_line();
            }
        }
        if (reason == VmExitReason::Crash && m_config.on_triple_fault == TripleFaultAction::Reset) {
            reason = VmExitReason::Reset;
            message += " (--on-triple-fault=reset)";
        }
        m_outcome = VmOutcome{reason, std::move(message)};
    }
    m_exiting.store(true, std::memory_order_release);
    for (auto& v : m_vcpus) v->kick();
    if (on_exit) on_exit();
}

std::optional<VmOutcome> Vm::outcome() const {
    std::lock_guard lock(m_outcome_lock);
    return m_outcome;
}

void Vm::shutdown() {
    if (m_shut_down) return;
    m_shut_down = true;
    for (auto& v : m_vcpus) v->kick();
    for (auto& v : m_vcpus) v->join();
    if (auto o = outcome(); o && o->reason == VmExitReason::Crash) log_crash_report(*this);
    if (m_config.stats_path) {
        if (auto r = write_stats(*this, *m_config.stats_path); !r)
            log::warn("--stats: {}", r.error().message());
    }
    if (m_devices) m_devices->reset_all();
}

}  // namespace rv
