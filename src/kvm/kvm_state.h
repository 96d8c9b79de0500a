// What KVM holds of a VM and its vCPUs, saved and restored for snapshots
// and migration: per vCPU the registers, XSAVE area, XCRs, every MSR KVM
// reports as saveable (kvmclock and TSC included), LAPIC, MP state, pending
// events and debug registers; per VM the kvmclock and, when the VM has them
// in the kernel, the PIC pair, the I/O APIC and the PIT.
//
// The kernel structs are stored as the kernel lays them out (x86-64 ABI,
// fixed sizes); decode() refuses a blob of another size. Restore order
// follows QEMU's: special registers before general ones, the MSRs before
// the LAPIC but the TSC deadline after it (the LAPIC must be in TSC
// deadline mode for the write to stick), events and MP state last.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "base/error.h"
#include "kvm/kvm.h"
#include "snapshot/state_codec.h"

namespace rv::kvm {

inline constexpr size_t kXsaveSize = 4096;  // KVM_GET_XSAVE's legacy area (no AMX)

// The MSRs KVM can save and restore (KVM_GET_MSR_INDEX_LIST).
Result<std::vector<uint32_t>> saveable_msrs(const Kvm& kvm);

struct VcpuState {
    static constexpr uint32_t kVersion = 1;
    kvm_regs regs{};
    kvm_sregs sregs{};
    std::array<uint8_t, kXsaveSize> xsave{};
    kvm_xcrs xcrs{};
    std::vector<std::pair<uint32_t, uint64_t>> msrs;  // (index, value)
    std::optional<kvm_lapic_state> lapic;             // with an in-kernel irqchip
    kvm_mp_state mp_state{};
    kvm_vcpu_events events{};
    kvm_debugregs debugregs{};

    void encode(snapshot::Writer& w) const;
    static VcpuState decode(snapshot::Reader& r);
    bool operator==(const VcpuState& other) const;
};

// msr_indices: saveable_msrs(); those KVM refuses to read for this vCPU
// (features the CPUID does not expose) are left out. On the vCPU's thread
// or while it is parked outside KVM_RUN, after its last exit was served
// (an IN's data filled in): KVM finishes that exit's instruction only on the
// next KVM_RUN, so save_vcpu first runs it with immediate_exit set, which
// completes the instruction and returns at once. Without that, a vCPU
// stopped at an OUT would repeat the OUT after restore.
Result<VcpuState> save_vcpu(VcpuFd& vcpu, std::span<const uint32_t> msr_indices, bool irqchip);
// Into a vCPU with the same CPUID, before it first runs.
Result<void> restore_vcpu(const VcpuFd& vcpu, const VcpuState& state);

struct VmState {
    static constexpr uint32_t kVersion = 1;
    kvm_clock_data clock{};
    std::optional<std::array<kvm_irqchip, 3>> irqchip;  // PIC master, PIC slave, I/O APIC
    std::optional<kvm_pit_state2> pit;

    void encode(snapshot::Writer& w) const;
    static VmState decode(snapshot::Reader& r);
    bool operator==(const VmState& other) const;
};

Result<VmState> save_vm(const VmFd& vm, bool irqchip, bool pit);
// Into a VM made with the same irqchip and PIT, before its vCPUs run.
Result<void> restore_vm(const VmFd& vm, const VmState& state);

}  // namespace rv::kvm
