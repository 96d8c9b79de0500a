#include "vmm/vm.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>

#include "base/log.h"
#include "devices/legacy/uart16550.h"
#include "devices/pci/pci_device.h"
#include "devices/pci/pci_root.h"
#include "devices/virtio/pci_transport.h"
#include "vmm/crash_report.h"
#include "vmm/msi_router.h"
#include "vmm/stats.h"
#include "vmm/terminal.h"

namespace rv {

namespace {
constexpr uint8_t kCtrlA = 0x01;  // console escape: Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A
}

Vm::Vm(const VmConfig& config, kvm::Kvm kvm, kvm::VmFd vm, GuestMemory memory,
       std::unique_ptr<EventLoop> loop)
    : m_config(config),
      m_kvm(std::move(kvm)),
      m_vm(std::move(vm)),
      m_memory(std::move(memory)),
      m_loop(std::move(loop)),
      m_msi(std::make_unique<KvmMsiRouter>(m_vm)) {}

Vm::~Vm() {
    for (auto& v : m_vcpus) v->kick();
    m_vcpus.clear();  // joins the threads before devices go away
    // Stop devices while the loop, memory and MSI router they use still exist.
    for (auto& slot : m_virtio) {
        for (auto& fd : slot->notify) m_loop->remove(fd.fd());
        slot->transport->device().reset();
    }
}

uint64_t Vm::msi_interrupts() const { return m_msi->triggered(); }

uint64_t Vm::posted_writes() const { return m_posted ? m_posted->drained() : 0; }

void Vm::flush_posted_writes() {
    if (m_posted) apply_posted_writes(*m_posted, m_pio, m_mmio);
}

void Vm::on_bar_mapped(const PciDevice& device, const PciBarInfo& bar, uint64_t address,
                       bool mapped) {
    if (m_coalesced_page <= 0 || bar.io) return;
    for (const PciBarRange& r : device.posted_write_ranges(bar.index)) {
        if (r.size == 0 || r.offset >= bar.size || r.size > bar.size - r.offset) continue;
        const uint64_t at = address + r.offset;
        const auto size = static_cast<uint32_t>(r.size);
        // Without a zone the writes simply exit as usual: slower, not wrong.
        auto done = mapped ? m_vm.register_coalesced_mmio(at, size)
                           : m_vm.unregister_coalesced_mmio(at, size);
        if (!done)
            log::warn("{}: posted writes at {:#x}: {}", device.name(), at,
                      done.error().message());
    }
}

Result<void> Vm::register_notifiers(VirtioSlot& slot, uint64_t bar_base) {
    uint16_t queues = slot.transport->queue_count();
    if (slot.notify.empty()) {
        slot.notify.reserve(queues);  // the handlers keep pointers to the elements
        for (uint16_t q = 0; q < queues; ++q) {
            slot.notify.push_back(RV_TRY(EventFd::create(EFD_NONBLOCK)));
            auto* transport = slot.transport.get();
            auto* fd = &slot.notify.back();
            RV_TRY_VOID(m_loop->add(fd->fd(), EPOLLIN, [transport, fd, q](uint32_t) {
                (void)fd->read();
                transport->device().queue_notify(q);
            }));
        }
    }
    for (uint16_t q = 0; q < queues; ++q) {
        int fd = slot.notify[q].fd();
        uint64_t offset = virtio::VirtioPciTransport::notify_offset(q);
        if (slot.notify_base)
            (void)m_vm.unregister_ioeventfd(fd, *slot.notify_base + offset, 0, false);
        RV_TRY_VOID(m_vm.register_ioeventfd(fd, bar_base + offset, 0, false));
    }
    slot.notify_base = bar_base;
    return {};
}

void Vm::request_exit(VmExitReason reason, std::string message) {
    {
        std::lock_guard lock(m_outcome_lock);
        if (m_outcome) return;
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
    m_loop->stop();
}

namespace {
// How long the VMM waits at exit for a slow console reader to take the last
// guest output (its final messages, a panic) before dropping it.
constexpr std::chrono::milliseconds kConsoleDrainAtExit{2000};
}  // namespace

// On a vCPU thread, for every byte the guest transmits. The bytes are handed
// to the event loop, which writes them out: the vCPU never waits on the
// console (a terminal, a pipe or a slow file), however far behind its reader is.
void Vm::on_console_output(std::span<const uint8_t> bytes) {
    ConsoleMonitor::Event event;
    {
        std::lock_guard lock(m_output_lock);
        event = m_monitor.feed(bytes);
        if (m_console_output) m_console_output->write(bytes);
    }
    if (event == ConsoleMonitor::Event::PanicEnded)
        request_exit(VmExitReason::Panic, *m_monitor.panic_line());
}

Result<void> Vm::setup_console_output() {
    auto output = RV_TRY(ConsoleOutput::create(m_config.console_out, *m_loop));
    std::lock_guard lock(m_output_lock);
    m_console_output = std::move(output);
    return {};
}

Result<void> Vm::setup_console_input() {
    // The UART tells us (on a vCPU thread) when its FIFO drains; the event
    // loop then feeds it more. Input waits while the FIFO is full: never dropped.
    m_input_space = RV_TRY(EventFd::create(EFD_NONBLOCK));
    m_console_input.set_space_callback([this] { (void)m_input_space->write(1); });
    RV_TRY_VOID(m_loop->add(m_input_space->fd(), EPOLLIN, [this](uint32_t) {
        (void)m_input_space->read();
        flush_console_input();
    }));
    if (m_config.console_in < 0) return {};
    auto watched = m_loop->add(m_config.console_in, EPOLLIN, [this](uint32_t) { on_console_input(); });
    if (!watched && watched.error().os_errno() == EPERM) {
        // epoll cannot watch regular files or /dev/null: read them as the FIFO drains.
        m_input_is_file = true;
        on_console_input();
        return {};
    }
    return watched;
}

void Vm::on_console_input() {
    if (!m_pending_input.empty()) return;  // backpressure: wait for the FIFO to drain
    if (m_input_eof) return;
    char buf[256];
    ssize_t n = ::read(m_config.console_in, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
        m_input_eof = true;
        if (!m_input_is_file) m_loop->remove(m_config.console_in);
        return;
    }
    bool interactive = ::isatty(m_config.console_in);
    for (ssize_t i = 0; i < n; ++i) {
        char c = buf[i];
        if (interactive && m_escape) {
            m_escape = false;
            if (c == 'x' || c == 'X') {
                request_exit(VmExitReason::Quit, "quit from the console (Ctrl-A x)");
                return;
            }
            if (c != kCtrlA) m_pending_input.push_back(static_cast<char>(kCtrlA));
        } else if (interactive && c == kCtrlA) {
            m_escape = true;
            continue;
        }
        m_pending_input.push_back(c);
    }
    flush_console_input();
}

void Vm::flush_console_input() {
    size_t n = std::min(m_console_input.capacity(), m_pending_input.size());
    if (n > 0) {
        m_console_input.enqueue(std::span(reinterpret_cast<const uint8_t*>(m_pending_input.data()), n));
        m_pending_input.erase(0, n);
    }
    if (m_input_eof) return;
    if (m_input_is_file) {
        if (m_pending_input.empty()) on_console_input();  // next chunk of the file
        return;
    }
    // Stop watching a pipe or terminal while bytes wait; resume once all are in.
    bool paused = !m_pending_input.empty();
    if (paused == m_input_paused) return;
    m_input_paused = paused;
    if (paused)
        m_loop->remove(m_config.console_in);
    else
        (void)m_loop->add(m_config.console_in, EPOLLIN, [this](uint32_t) { on_console_input(); });
}

Result<VmOutcome> Vm::run() {
    Vcpu::install_kick_signal();

    // SIGTERM/SIGINT/SIGHUP end the VM cleanly (terminal restored).
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);  // vCPU threads inherit the mask
    int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) return errno_error("signalfd");
    Fd signal_fd(sfd);
    RV_TRY_VOID(m_loop->add(sfd, EPOLLIN, [this, sfd](uint32_t) {
        signalfd_siginfo info{};
        if (::read(sfd, &info, sizeof info) == sizeof info)
            request_exit(VmExitReason::Quit, fmt::format("terminated by signal {}", info.ssi_signo));
    }));

    // A console reader that exits must not kill the VM with SIGPIPE: writes to
    // its pipe fail with EPIPE instead and console output stops (ConsoleOutput).
    ::signal(SIGPIPE, SIG_IGN);

    RawTerminal terminal(m_config.console_in >= 0 ? m_config.console_in : -1);
    RV_TRY_VOID(setup_console_output());
    RV_TRY_VOID(setup_console_input());

    for (auto& v : m_vcpus) v->start();
    auto loop_result = m_loop->run();
    if (!loop_result) request_exit(VmExitReason::Error, loop_result.error().message());
    for (auto& v : m_vcpus) v->kick();
    for (auto& v : m_vcpus) v->join();
    m_console_output->drain(kConsoleDrainAtExit);
    {
        std::lock_guard lock(m_outcome_lock);
        if (m_outcome && m_outcome->reason == VmExitReason::Crash) log_crash_report(*this);
    }
    if (m_config.stats_path) {
        if (auto r = write_stats(*this, *m_config.stats_path); !r)
            log::warn("--stats: {}", r.error().message());
    }
    ::pthread_sigmask(SIG_UNBLOCK, &mask, nullptr);

    std::lock_guard lock(m_outcome_lock);
    return m_outcome.value_or(VmOutcome{VmExitReason::Error, "event loop ended"});
}

}  // namespace rv
