#include "vmm/kvm_probe.h"

#include <chrono>
#include <cstring>

#include "kvm/kvm.h"
#include "memory/guest_memory.h"

namespace rv {

Result<KvmProbe> probe_kvm(const std::string& kvm_path, uint64_t iterations) {
    auto kvm = RV_TRY(kvm::Kvm::open(kvm_path));
    KvmProbe probe;
    probe.max_vcpus = kvm.max_vcpus();
    probe.loop_iterations = iterations;

    auto vm = RV_TRY(kvm.create_vm());
    GuestMemory::RegionSpec spec{GuestAddress(0), 0x10000};
    auto memory = RV_TRY(GuestMemory::create(std::span(&spec, 1)));
    const auto& region = memory.regions().front();
    RV_TRY_VOID(vm.set_user_memory_region(0, 0, region.size, region.host));

    // 16-bit real mode (CPL 0) at 0x1000:
    //   mov ecx, iterations ; 66 B9 imm32
    //   dec ecx             ; 66 49
    //   jnz -4              ; 75 FC
    //   hlt                 ; F4
    uint32_t count = static_cast<uint32_t>(iterations);
    uint8_t code[] = {0x66, 0xB9, 0, 0, 0, 0, 0x66, 0x49, 0x75, 0xFC, 0xF4};
    std::memcpy(code + 2, &count, sizeof count);
    RV_TRY_VOID(memory.write(GuestAddress(0x1000), code));

    size_t mmap_size = RV_TRY(kvm.vcpu_mmap_size());
    auto vcpu = RV_TRY(vm.create_vcpu(0, mmap_size));
    auto sregs = RV_TRY(vcpu.get_sregs());
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    RV_TRY_VOID(vcpu.set_sregs(sregs));
    kvm_regs regs{};
    regs.rip = 0x1000;
    regs.rflags = 0x2;
    RV_TRY_VOID(vcpu.set_regs(regs));

    auto start = std::chrono::steady_clock::now();
    for (;;) {
        auto exit = RV_TRY(vcpu.run());
        if (exit.kind == kvm::VcpuExit::Kind::Hlt) break;
        if (exit.kind == kvm::VcpuExit::Kind::Interrupted) continue;
        return make_error("probe guest stopped unexpectedly (KVM exit reason {})", exit.reason);
    }
    auto elapsed = std::chrono::steady_clock::now() - start;
    probe.ns_per_iteration =
        std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(iterations);
    probe.ring0_native = probe.ns_per_iteration < kEmulatedThresholdNs;
    return probe;
}

}  // namespace rv
