// MSI delivery for PCI devices through KVM: each vector gets a GSI whose
// routing entry carries the guest-programmed (address, data), and an irqfd
// so raising it is one eventfd write from any thread (no ioctl, no exit).
#pragma once

#include <linux/kvm.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "base/fd.h"
#include "devices/pci/msi.h"
#include "kvm/kvm.h"

namespace rv {

class KvmMsiRouter final : public MsiRouter {
public:
    explicit KvmMsiRouter(const kvm::VmFd& vm) : m_vm(vm) {}

    Result<uint32_t> allocate_gsi() override;
    Result<void> set_route(uint32_t gsi, MsiMessage message) override;
    void trigger(uint32_t gsi) override;
    uint64_t triggered() const { return m_triggered.load(std::memory_order_relaxed); }

    // The routes KVM sets up with its in-kernel irqchip (GSI n -> IOAPIC pin
    // n, and PIC pin n for n < 16): KVM_SET_GSI_ROUTING replaces the whole
    // table, so every update must repeat them.
    static std::vector<kvm_irq_routing_entry> default_irqchip_routes();

private:
    Result<void> commit();  // pushes the full table; caller holds m_lock

    static constexpr uint32_t kFirstMsiGsi = 24;  // after the IOAPIC's 24 pins
    static constexpr uint32_t kMaxGsi = 1024;

    const kvm::VmFd& m_vm;
    std::mutex m_lock;
    uint32_t m_next_gsi{kFirstMsiGsi};
    std::map<uint32_t, MsiMessage> m_routes;             // gsi -> message (routed ones)
    std::map<uint32_t, std::unique_ptr<EventFd>> m_irqfds;  // gsi -> irqfd
    std::atomic<uint64_t> m_triggered{0};
};

}  // namespace rv
