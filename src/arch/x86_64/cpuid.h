// Per-vCPU CPUID, derived from KVM_GET_SUPPORTED_CPUID: the host model is
// passed through, while topology (APIC ids, core counts, cache sharing) is
// rewritten to describe num_cpus single-threaded cores in one package, and
// features KVM cannot virtualize for us (PMU, power management) are hidden.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace rv::x86 {

inline constexpr uint32_t kCpuidLeaf1EcxTscDeadline = 1u << 24;
inline constexpr uint32_t kCpuidLeaf1EcxHypervisor = 1u << 31;
inline constexpr uint32_t kCpuidLeaf1EdxHtt = 1u << 28;
inline constexpr uint32_t kCpuidLeaf6EaxArat = 1u << 2;
inline constexpr uint32_t kCpuidLeaf1EcxXsave = 1u << 26;

// Bits of APIC id used by the core level: ceil(log2(num_cpus)).
unsigned core_id_bits(unsigned num_cpus);

// Rewrites `entries` (KVM's supported list, copied per vCPU) for vCPU
// `cpu_index` of `num_cpus`. The vCPU's APIC id is cpu_index. Leaves 0xB and
// 0x1F, when present, are replaced by exactly three subleaves (SMT, core,
// invalid) so no subleaf the guest walks is missing.
// Leaf 0xD subleaf 0's EBX (the XSAVE area size for what XCR0 enables now)
// becomes ECX (the size for every feature the leaf offers), which is what it
// reads once the guest enables them all, as Linux does (see initial_xcr0).
void filter_cpuid(std::vector<kvm_cpuid_entry2>& entries, unsigned cpu_index, unsigned num_cpus);

// The XCR0 a vCPU starts with: every user state component leaf 0xD offers
// (x87 always), or 0 when the CPUID has no XSAVE. Linux enables exactly these
// at boot, so KVM's idea of XCR0 matches the guest's from the first
// instruction on. That matters under a nested hypervisor that does not
// intercept XSETBV (QEMU's TCG emulating AMD-V, our test host): KVM never
// sees the guest's own write, keeps reporting leaf 0xD's sizes for XCR0 = 1,
// and the guest kernel then disables XSAVE ("XSAVE consistency problem").
uint64_t initial_xcr0(const std::vector<kvm_cpuid_entry2>& entries);

}  // namespace rv::x86
