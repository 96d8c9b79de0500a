#include "vmm/msi_router.h"

#include "base/log.h"

namespace rv {

std::vector<kvm_irq_routing_entry> KvmMsiRouter::default_irqchip_routes() {
    std::vector<kvm_irq_routing_entry> routes;
    auto add = [&](uint32_t gsi, uint32_t chip, uint32_t pin) {
        kvm_irq_routing_entry e{};
        e.gsi = gsi;
        e.type = KVM_IRQ_ROUTING_IRQCHIP;
        e.u.irqchip.irqchip = chip;
        e.u.irqchip.pin = pin;
        routes.push_back(e);
    };
    for (uint32_t gsi = 0; gsi < 24; ++gsi) {
        add(gsi, KVM_IRQCHIP_IOAPIC, gsi);
        if (gsi < 8)
            add(gsi, KVM_IRQCHIP_PIC_MASTER, gsi);
        else if (gsi < 16)
            add(gsi, KVM_IRQCHIP_PIC_SLAVE, gsi - 8);
    }
    return routes;
}

Result<uint32_t> KvmMsiRouter::allocate_gsi() {
    std::lock_guard lock(m_lock);
    if (m_next_gsi >= kMaxGsi) return make_error("out of MSI GSIs ({} in use)", kMaxGsi - kFirstMsiGsi);
    uint32_t gsi = m_next_gsi++;
    auto fd = RV_TRY(EventFd::create(EFD_NONBLOCK));
    RV_TRY_VOID(m_vm.register_irqfd(fd.fd(), gsi));
    m_irqfds[gsi] = std::make_unique<EventFd>(std::move(fd));
    return gsi;
}

Result<void> KvmMsiRouter::set_route(uint32_t gsi, MsiMessage message) {
    std::lock_guard lock(m_lock);
    if (!m_irqfds.contains(gsi)) return make_error("MSI route for unallocated GSI {}", gsi);
    auto it = m_routes.find(gsi);
    if (it != m_routes.end() && it->second == message) return {};
    m_routes[gsi] = message;
    return commit();
}

Result<void> KvmMsiRouter::commit() {
    auto table = default_irqchip_routes();
    for (const auto& [gsi, msg] : m_routes) {
        kvm_irq_routing_entry e{};
        e.gsi = gsi;
        e.type = KVM_IRQ_ROUTING_MSI;
        e.u.msi.address_lo = static_cast<uint32_t>(msg.address);
        e.u.msi.address_hi = static_cast<uint32_t>(msg.address >> 32);
        e.u.msi.data = msg.data;
        table.push_back(e);
    }
    return m_vm.set_gsi_routing(table);
}

void KvmMsiRouter::trigger(uint32_t gsi) {
    EventFd* fd = nullptr;
    {
        std::lock_guard lock(m_lock);
        auto it = m_irqfds.find(gsi);
        if (it != m_irqfds.end()) fd = it->second.get();
    }
    // irqfds live as long as the router, so writing outside the lock is safe.
    if (!fd || !fd->write(1)) {
        log::warn("MSI: cannot raise GSI {}", gsi);
        return;
    }
    m_triggered.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace rv
