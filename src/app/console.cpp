#include "app/console.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>

namespace rv {

namespace {
constexpr uint8_t kCtrlA = 0x01;
// Console output still queued at exit gets this long to reach a slow reader.
constexpr std::chrono::milliseconds kDrainAtExit{2000};
// Input read ahead of the guest (before the VM starts, or a full FIFO).
constexpr size_t kMaxPending = 4096;
}  // namespace

Result<std::unique_ptr<ConsoleBridge>> ConsoleBridge::create(Vmm& vmm, int in_fd, int out_fd) {
    std::unique_ptr<ConsoleBridge> b(new ConsoleBridge(vmm, in_fd));
    b->m_output = RV_TRY(ConsoleOutput::create(out_fd, vmm.loop()));
    b->m_space = RV_TRY(EventFd::create(EFD_NONBLOCK));
    auto* raw = b.get();
    RV_TRY_VOID(vmm.loop().add(b->m_space->fd(), EPOLLIN, [raw](uint32_t) {
        (void)raw->m_space->read();
        raw->flush_input();
    }));
    if (in_fd >= 0) {
        auto watched = vmm.loop().add(in_fd, EPOLLIN, [raw](uint32_t) { raw->on_input(); });
        if (!watched && watched.error().os_errno() == EPERM) {
            b->m_is_file = true;  // regular files and /dev/null: read as the guest takes it
        } else if (!watched) {
            return std::unexpected(watched.error());
        } else {
            b->m_watching = true;
        }
    }
    return b;
}

ConsoleBridge::~ConsoleBridge() {
    m_vmm.loop().remove(m_space->fd());
    if (m_watching) m_vmm.loop().remove(m_in);
}

Vm::ConsoleSink ConsoleBridge::sink() {
    return [out = m_output.get()](std::span<const uint8_t> bytes) { out->write(bytes); };
}

void ConsoleBridge::vm_started() {
    ConsoleInput* in = m_vmm.console_input();
    if (!in) return;
    m_vm_ready = true;
    // The device tells us (on a vCPU thread) when its FIFO drains.
    in->set_space_callback([space = &*m_space] { (void)space->write(1); });
    if (m_is_file) on_input();
    flush_input();
}

void ConsoleBridge::drain() { m_output->drain(kDrainAtExit); }

void ConsoleBridge::on_input() {
    if (m_eof || m_pending.size() >= kMaxPending) return;  // backpressure
    char buf[256];
    ssize_t n = ::read(m_in, buf, std::min(sizeof buf, kMaxPending - m_pending.size()));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
        m_eof = true;
        watch_input(false);
        return;
    }
    const bool interactive = m_terminal.active();
    for (ssize_t i = 0; i < n; ++i) {
        char c = buf[i];
        if (interactive && m_escape) {
            m_escape = false;
            if (c == 'x' || c == 'X') {
                m_vmm.quit("quit from the console (Ctrl-A x)");
                return;
            }
            if (c != kCtrlA) m_pending.push_back(static_cast<char>(kCtrlA));
        } else if (interactive && c == kCtrlA) {
            m_escape = true;
            continue;
        }
        m_pending.push_back(c);
    }
    flush_input();
}

void ConsoleBridge::flush_input() {
    ConsoleInput* in = m_vm_ready ? m_vmm.console_input() : nullptr;
    if (in) {
        size_t n = std::min(in->capacity(), m_pending.size());
        if (n > 0) {
            in->enqueue(std::span(reinterpret_cast<const uint8_t*>(m_pending.data()), n));
            m_pending.erase(0, n);
        }
    }
    if (m_eof || m_in < 0) return;
    if (m_is_file) {
        if (in && m_pending.empty()) on_input();  // the next chunk of the file
        return;
    }
    // Stop watching a pipe or terminal while bytes wait; resume once all are in.
    watch_input(m_pending.empty());
}

void ConsoleBridge::watch_input(bool on) {
    if (m_is_file || on == m_watching) return;
    m_watching = on;
    if (on)
        (void)m_vmm.loop().add(m_in, EPOLLIN, [this](uint32_t) { on_input(); });
    else
        m_vmm.loop().remove(m_in);
}

Result<std::unique_ptr<Fd>> watch_signals(Vmm& vmm) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);  // threads started later inherit it
    int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) return errno_error("signalfd");
    auto fd = std::make_unique<Fd>(sfd);
    RV_TRY_VOID(vmm.loop().add(sfd, EPOLLIN, [&vmm, sfd](uint32_t) {
        signalfd_siginfo info{};
        if (::read(sfd, &info, sizeof info) == sizeof info)
            vmm.quit(fmt::format("terminated by signal {}", info.ssi_signo));
    }));
    return fd;
}

}  // namespace rv
