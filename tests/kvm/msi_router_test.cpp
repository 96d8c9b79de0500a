// KvmMsiRouter against a real VM: GSIs with irqfds, and routing tables that
// KVM accepts (the default irqchip routes plus MSI entries).
#include <linux/kvm.h>

#include "kvm/tiny_guest.h"
#include "vmm/msi_router.h"

namespace rv::test {
namespace {

TEST(KvmMsiRouter, AllocatesRoutesAndTriggers) {
    RV_REQUIRE_KVM();
    auto kvm = kvm::Kvm::open();
    ASSERT_TRUE(kvm);
    auto vm = kvm->create_vm();
    ASSERT_TRUE(vm);
    ASSERT_TRUE(vm->create_irqchip());
    KvmMsiRouter router(*vm);
    auto a = router.allocate_gsi();
    auto b = router.allocate_gsi();
    ASSERT_TRUE(a) << a.error().message();
    ASSERT_TRUE(b);
    EXPECT_GE(*a, 24u);
    EXPECT_NE(*a, *b);
    auto routed = router.set_route(*a, MsiMessage{0xFEE00000, 0x4031});
    ASSERT_TRUE(routed) << routed.error().message();
    EXPECT_TRUE(router.set_route(*b, MsiMessage{0xFEE01000, 0x4041}));
    EXPECT_TRUE(router.set_route(*a, MsiMessage{0xFEE00000, 0x4032}));  // moved vector
    EXPECT_FALSE(router.set_route(999, MsiMessage{0xFEE00000, 0x4030}));  // never allocated
    router.trigger(*a);
    router.trigger(*b);
    router.trigger(12345);  // unknown: logged, not counted
    EXPECT_EQ(router.triggered(), 2u);
}

}  // namespace
}  // namespace rv::test
