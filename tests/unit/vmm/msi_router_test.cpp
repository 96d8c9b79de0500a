#include "vmm/msi_router.h"

#include <gtest/gtest.h>

#include <set>

namespace rv {
namespace {

// KVM_SET_GSI_ROUTING replaces the whole table, so the default irqchip
// routes must be repeated exactly: GSI n to IOAPIC pin n (0..23) and to the
// PICs for n < 16.
TEST(KvmMsiRouter, DefaultRoutesMatchKvmsInKernelIrqchip) {
    auto routes = KvmMsiRouter::default_irqchip_routes();
    EXPECT_EQ(routes.size(), 24u + 16u);
    std::set<std::pair<uint32_t, uint32_t>> ioapic, pic;
    for (const auto& r : routes) {
        ASSERT_EQ(r.type, static_cast<uint32_t>(KVM_IRQ_ROUTING_IRQCHIP));
        if (r.u.irqchip.irqchip == KVM_IRQCHIP_IOAPIC) {
            EXPECT_EQ(r.u.irqchip.pin, r.gsi);
            ioapic.insert({r.gsi, r.u.irqchip.pin});
        } else {
            EXPECT_LT(r.gsi, 16u);
            EXPECT_EQ(r.u.irqchip.irqchip,
                      r.gsi < 8 ? uint32_t(KVM_IRQCHIP_PIC_MASTER) : uint32_t(KVM_IRQCHIP_PIC_SLAVE));
            EXPECT_EQ(r.u.irqchip.pin, r.gsi % 8);
            pic.insert({r.gsi, r.u.irqchip.pin});
        }
    }
    EXPECT_EQ(ioapic.size(), 24u);
    EXPECT_EQ(pic.size(), 16u);
}

}  // namespace
}  // namespace rv
