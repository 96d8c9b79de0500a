// The guest console as the process sees it: the host's stdin feeds the
// guest's console input (the UART or virtio-console, whichever the VM uses),
// the guest's output goes to stdout (non-blocking: app/console_output.h), an
// interactive terminal is put in raw mode, and Ctrl-A x quits (Ctrl-A Ctrl-A
// sends a Ctrl-A). Input is never dropped: it waits while the guest's FIFO is
// full, and before the VM starts.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "app/console_output.h"
#include "app/terminal.h"
#include "base/error.h"
#include "base/fd.h"
#include "vmm/vmm.h"

namespace rv {

class ConsoleBridge {
public:
    // in_fd < 0: no console input. Registers in the Vmm's loop (control set).
    static Result<std::unique_ptr<ConsoleBridge>> create(Vmm& vmm, int in_fd, int out_fd);
    ~ConsoleBridge();

    // The sink for the guest's console output (Vmm::Options::console).
    Vm::ConsoleSink sink();
    // Call once the VM exists (after Vmm::start): input starts flowing.
    void vm_started();
    // At exit, with the loop stopped: the last output, within a bound.
    void drain();

private:
    ConsoleBridge(Vmm& vmm, int in_fd) : m_vmm(vmm), m_in(in_fd), m_terminal(in_fd) {}
    void on_input();
    void flush_input();
    void watch_input(bool on);

    Vmm& m_vmm;
    int m_in;
    RawTerminal m_terminal;
    std::unique_ptr<ConsoleOutput> m_output;
    std::optional<EventFd> m_space;  // the guest's input FIFO has room again
    std::string m_pending;           // bytes waiting for FIFO room (or for the VM)
    bool m_escape{false};            // saw Ctrl-A on an interactive console
    bool m_is_file{false};           // epoll cannot watch it: read as the FIFO drains
    bool m_eof{false};
    bool m_watching{false};
    bool m_vm_ready{false};
};

// SIGTERM, SIGINT and SIGHUP end the VM cleanly (Vmm::quit) through a
// signalfd on the loop; the signals are blocked in every thread from here on.
Result<std::unique_ptr<Fd>> watch_signals(Vmm& vmm);

}  // namespace rv
