// KVM's VM and vCPU state through snapshot bytes: a tiny guest stopped
// mid-computation continues in a second VM, restored from the first one's
// saved state and memory, with the very same outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kvm/kvm_state.h"
#include "kvm/tiny_guest.h"
#include "memory/guest_memory.h"
#include "snapshot/state_codec.h"

namespace rv::test {
namespace {

// bx counts, cx sums the squares, every sum goes out on port 0x10.
constexpr uint8_t kCode[] = {
    0x43,              // inc bx
    0x89, 0xD8,        // mov ax, bx
    0x0F, 0xAF, 0xC0,  // imul ax, ax
    0x01, 0xC1,        // add cx, ax
    0x89, 0xC8,        // mov ax, cx
    0xE7, 0x10,        // out 0x10, ax
    0xEB, 0xF2,        // jmp back to inc bx
};
constexpr uint32_t kMsrSysenterCs = 0x174;

// The next n values the guest writes to port 0x10.
std::vector<uint16_t> outputs(TinyGuest& g, int n) {
    std::vector<uint16_t> out;
    for (int guard = 0; static_cast<int>(out.size()) < n && guard < 100 * n; ++guard) {
        auto exit = g.vcpu->fd().run();
        if (!exit) {
            ADD_FAILURE() << exit.error().message();
            break;
        }
        if (exit->kind == kvm::VcpuExit::Kind::IoOut && exit->address == 0x10 && exit->size == 2)
            out.push_back(static_cast<uint16_t>(exit->data[0] | exit->data[1] << 8));
        else if (exit->kind != kvm::VcpuExit::Kind::Interrupted) {
            ADD_FAILURE() << "unexpected exit " << exit->reason;
            break;
        }
    }
    return out;
}

TEST(KvmState, AGuestContinuesInAnotherVmFromItsSavedState) {
    RV_REQUIRE_KVM();
    auto a = TinyGuest::create(kCode, false, true);
    ASSERT_TRUE(a);
    ASSERT_TRUE(a->vcpu->fd().set_msrs(std::vector<std::pair<uint32_t, uint64_t>>{{kMsrSysenterCs, 0x1234}}));
    const auto first = outputs(*a, 5);
    ASSERT_EQ(first, (std::vector<uint16_t>{1, 5, 14, 30, 55}));

    const auto msrs = kvm::saveable_msrs(*a->kvm).value();
    ASSERT_FALSE(msrs.empty());
    auto vcpu_state = kvm::save_vcpu(a->vcpu->fd(), msrs, true);
    ASSERT_TRUE(vcpu_state.has_value()) << vcpu_state.error().message();
    auto vm_state = kvm::save_vm(*a->vm, true, true);
    ASSERT_TRUE(vm_state.has_value()) << vm_state.error().message();
    EXPECT_TRUE(vcpu_state->lapic.has_value());
    const bool has_sysenter = std::ranges::find(vcpu_state->msrs, std::pair<uint32_t, uint64_t>{kMsrSysenterCs, 0x1234}) !=
                              vcpu_state->msrs.end();
    EXPECT_TRUE(has_sysenter) << "the MSR the VMM set is saved";

    // Through bytes, as a snapshot file carries them.
    const auto vcpu_back = snapshot::decode<kvm::VcpuState>(snapshot::encode(*vcpu_state), "vcpu").value();
    const auto vm_back = snapshot::decode<kvm::VmState>(snapshot::encode(*vm_state), "vm").value();
    EXPECT_TRUE(vcpu_back == *vcpu_state);
    EXPECT_TRUE(vm_back == *vm_state);

    // A second VM made the same way (its own code and registers are overwritten).
    auto b = TinyGuest::create(kCode, false, true);
    ASSERT_TRUE(b);
    std::vector<uint8_t> ram(0x10000);
    ASSERT_TRUE(a->memory.read(GuestAddress(0), ram));
    ASSERT_TRUE(b->memory.write(GuestAddress(0), ram));
    auto restored = kvm::restore_vm(*b->vm, vm_back);
    ASSERT_TRUE(restored.has_value()) << restored.error().message();
    restored = kvm::restore_vcpu(b->vcpu->fd(), vcpu_back);
    ASSERT_TRUE(restored.has_value()) << restored.error().message();

    const auto again = kvm::save_vcpu(b->vcpu->fd(), msrs, true).value();
    EXPECT_EQ(again.regs.rbx, 5u);
    EXPECT_EQ(again.regs.rcx, 55u);
    EXPECT_EQ(again.regs.rip, vcpu_state->regs.rip);
    EXPECT_EQ(std::memcmp(&again.sregs, &vcpu_state->sregs, sizeof again.sregs), 0);
    EXPECT_EQ(std::memcmp(again.lapic->regs, vcpu_state->lapic->regs, sizeof again.lapic->regs), 0);

    // Both go on alike: 6^2 + 55 = 91, ...
    const auto next_a = outputs(*a, 4);
    const auto next_b = outputs(*b, 4);
    EXPECT_EQ(next_a, (std::vector<uint16_t>{91, 140, 204, 285}));
    EXPECT_EQ(next_b, next_a);
}

TEST(KvmState, StateOfAnotherLayoutIsRefused) {
    kvm::VcpuState s;
    auto bytes = snapshot::encode(s);
    // The first blob is kvm_regs: claim one byte less.
    bytes[0] = static_cast<uint8_t>(sizeof(kvm_regs) - 1);
    bytes.erase(bytes.begin() + 4);
    const auto r = snapshot::decode<kvm::VcpuState>(bytes, "vcpu 0");
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message().find("regs"), std::string::npos) << r.error().message();

    auto good = snapshot::encode(kvm::VmState{});
    good.pop_back();
    EXPECT_FALSE(snapshot::decode<kvm::VmState>(good, "vm").has_value());
}

}  // namespace
}  // namespace rv::test
