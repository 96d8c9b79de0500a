// A throw-away VM running a few bytes of hand-written 16-bit real-mode code
// (CPL 0) at 0x1000 in 64 KiB of RAM, with its exits served by a Vcpu on the
// given buses. Tests skip (not fail) where /dev/kvm is absent.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <span>

#include "kvm/kvm.h"
#include "memory/guest_memory.h"
#include "vmm/vcpu.h"

namespace rv::test {

class RecordingControl : public VmControl {
public:
    void request_exit(VmExitReason r, std::string text) override {
        if (!reason) {
            reason = r;
            message = std::move(text);
        }
    }
    bool exiting() const override { return reason.has_value(); }
    std::optional<VmExitReason> reason;
    std::string message;
};

inline bool kvm_available() { return ::access("/dev/kvm", R_OK | W_OK) == 0; }

#define RV_REQUIRE_KVM()                                                              \
    do {                                                                              \
        if (!::rv::test::kvm_available()) GTEST_SKIP() << "/dev/kvm is not available"; \
    } while (0)

struct TinyGuest {
    static constexpr uint64_t kCodeAddress = 0x1000;

    // Creates the VM and loads code; returns nullopt (with a gtest failure) on
    // error. posted: map the coalesced MMIO ring and hand it to the Vcpu.
    // irqchip: the in-kernel PIC, I/O APIC, LAPIC and PIT, as a real VM has.
    static std::unique_ptr<TinyGuest> create(std::span<const uint8_t> code, bool posted = false,
                                             bool irqchip = false) {
        auto g = std::unique_ptr<TinyGuest>(new TinyGuest());
        auto kvm = kvm::Kvm::open();
        if (!kvm) {
            ADD_FAILURE() << kvm.error().message();
            return nullptr;
        }
        auto vm = kvm->create_vm();
        GuestMemory::RegionSpec spec{GuestAddress(0), 0x10000};
        auto memory = GuestMemory::create(std::span(&spec, 1));
        if (!vm || !memory) {
            ADD_FAILURE() << "cannot create VM or memory";
            return nullptr;
        }
        if (irqchip) {
            EXPECT_TRUE(vm->set_tss_address(0xfffbd000));
            EXPECT_TRUE(vm->create_irqchip());
            EXPECT_TRUE(vm->create_pit2());
        }
        g->memory = std::move(*memory);
        const auto& region = g->memory.regions().front();
        EXPECT_TRUE(vm->set_user_memory_region(0, 0, region.size, region.host));
        EXPECT_TRUE(g->memory.write(GuestAddress(kCodeAddress), code));
        auto vcpu = vm->create_vcpu(0, kvm->vcpu_mmap_size().value());
        if (!vcpu) {
            ADD_FAILURE() << vcpu.error().message();
            return nullptr;
        }
        auto sregs = vcpu->get_sregs().value();
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        EXPECT_TRUE(vcpu->set_sregs(sregs));
        kvm_regs regs{};
        regs.rip = kCodeAddress;
        regs.rflags = 0x2;
        regs.rsp = 0x8000;
        EXPECT_TRUE(vcpu->set_regs(regs));
        if (posted) {
            int page = kvm->check_extension(KVM_CAP_COALESCED_MMIO).value_or(0);
            if (page <= 0) {
                ADD_FAILURE() << "KVM has no coalesced MMIO";
                return nullptr;
            }
            auto ring = kvm::CoalescedRing::map(*vcpu, page);
            if (!ring) {
                ADD_FAILURE() << ring.error().message();
                return nullptr;
            }
            g->ring = std::move(*ring);
        }
        g->kvm.emplace(std::move(*kvm));
        g->vm.emplace(std::move(*vm));
        g->vcpu =
            std::make_unique<Vcpu>(std::move(*vcpu), g->pio, g->mmio, g->control, g->ring.get());
        return g;
    }

    // Runs until the Vcpu asks to stop or max_exits exits have been served.
    void run(int max_exits = 1000) {
        for (int i = 0; i < max_exits && !control.exiting(); ++i) {
            auto exit = vcpu->fd().run();
            ASSERT_TRUE(exit) << exit.error().message();
            if (!vcpu->handle_exit(*exit)) return;
        }
    }

    std::optional<kvm::Kvm> kvm;
    std::optional<kvm::VmFd> vm;
    GuestMemory memory;
    PioBus pio;
    MmioBus mmio;
    RecordingControl control;
    std::unique_ptr<kvm::CoalescedRing> ring;  // with posted = true
    std::unique_ptr<Vcpu> vcpu;

private:
    TinyGuest() = default;
};

}  // namespace rv::test
