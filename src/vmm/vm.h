// A running virtual machine: guest memory, KVM VM, buses, devices, vCPU
// threads and the event loop. Built by Vm::create (see builder.cpp), run by
// Vm::run until the guest powers off, reboots, panics or the VMM fails.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "bus/bus.h"
#include "kvm/coalesced_ring.h"
#include "kvm/kvm.h"
#include "memory/guest_memory.h"
#include "vmm/console_monitor.h"
#include "vmm/console_output.h"
#include "vmm/event_loop.h"
#include "vmm/vcpu.h"
#include "vmm/vm_config.h"
#include "vmm/vm_exit.h"

namespace rv {

class Uart16550;
class ResetControl;
class PciRoot;
class PciDevice;
struct PciBarInfo;
class KvmMsiRouter;
namespace virtio {
class VirtioPciTransport;
}

// A virtio device on PCI and the ioeventfds that carry its queue notifications.
struct VirtioSlot {
    std::shared_ptr<virtio::VirtioPciTransport> transport;
    std::vector<EventFd> notify;           // one per queue, served by the event loop
    std::optional<uint64_t> notify_base;   // BAR base the ioeventfds are registered at
};

// Where console input goes: the UART or virtio-console (same host-side API).
struct ConsoleInput {
    std::function<void(std::span<const uint8_t>)> enqueue;
    std::function<size_t()> capacity;
    // Called with a function the device runs when it has room again.
    std::function<void(std::function<void()>)> set_space_callback;
};

class Vm final : public VmControl {
public:
    static Result<std::unique_ptr<Vm>> create(const VmConfig& config);
    ~Vm() override;

    // Boots the guest and serves it until it stops.
    Result<VmOutcome> run();

    void request_exit(VmExitReason reason, std::string message) override;
    bool exiting() const override { return m_exiting.load(std::memory_order_acquire); }

    const GuestMemory& memory() const { return m_memory; }
    const std::vector<std::unique_ptr<Vcpu>>& vcpus() const { return m_vcpus; }
    uint64_t msi_interrupts() const;
    // Guest writes KVM buffered in coalesced MMIO zones and we applied later
    // (PciDevice::posted_write_ranges); 0 without coalesced MMIO.
    uint64_t posted_writes() const;
    // Applies the buffered writes now (any thread, no device lock held).
    void flush_posted_writes();
    // The PCI bus, for --stats (null before the builder adds it).
    const PciRoot* pci() const { return m_pci.get(); }

private:
    Vm(const VmConfig& config, kvm::Kvm kvm, kvm::VmFd vm, GuestMemory memory,
       std::unique_ptr<EventLoop> loop);
    Result<void> register_notifiers(VirtioSlot& slot, uint64_t bar_base);
    // PciRoot's BarObserver: coalesced MMIO zones follow the BARs' posted ranges.
    void on_bar_mapped(const PciDevice& device, const PciBarInfo& bar, uint64_t address,
                       bool mapped);

    friend class VmBuilder;

    Result<void> setup_console_input();
    void on_console_input();
    void flush_console_input();
    Result<void> setup_console_output();
    void on_console_output(std::span<const uint8_t> bytes);

    VmConfig m_config;
    kvm::Kvm m_kvm;
    kvm::VmFd m_vm;
    GuestMemory m_memory;
    std::unique_ptr<EventLoop> m_loop;
    std::unique_ptr<KvmMsiRouter> m_msi;  // outlives the buses and devices that use it
    int m_coalesced_page{0};  // KVM_CAP_COALESCED_MMIO: the ring's page, 0 = not supported
    // The ring (mapped once vCPU 0 exists); outlives the vCPUs and devices that use it.
    std::unique_ptr<kvm::CoalescedRing> m_posted;
    PioBus m_pio;
    MmioBus m_mmio;
    std::vector<std::unique_ptr<Vcpu>> m_vcpus;
    std::shared_ptr<Uart16550> m_uart;
    std::shared_ptr<ResetControl> m_reset_control;  // 0xCF9, in front of the PCI config ports
    std::shared_ptr<PciRoot> m_pci;
    std::vector<std::unique_ptr<VirtioSlot>> m_virtio;
    ConsoleInput m_console_input;

    std::mutex m_output_lock;  // guards the two below (and keeps output in monitor order)
    ConsoleMonitor m_monitor;
    std::unique_ptr<ConsoleOutput> m_console_output;  // set before the vCPUs start

    std::string m_pending_input;  // console bytes waiting for UART FIFO space
    bool m_escape{false};         // saw Ctrl-A on an interactive console
    std::optional<EventFd> m_input_space;  // UART FIFO has room again
    bool m_input_paused{false};
    bool m_input_is_file{false};
    bool m_input_eof{false};

    std::atomic<bool> m_exiting{false};
    std::mutex m_outcome_lock;
    std::optional<VmOutcome> m_outcome;
};

}  // namespace rv
