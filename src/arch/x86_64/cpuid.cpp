#include "arch/x86_64/cpuid.h"

#include <algorithm>
#include <cstring>

namespace rv::x86 {

namespace {

bool is_amd_like(const std::vector<kvm_cpuid_entry2>& entries) {
    for (const auto& e : entries) {
        if (e.function != 0) continue;
        // Vendor string is EBX, EDX, ECX.
        char vendor[12];
        std::memcpy(vendor, &e.ebx, 4);
        std::memcpy(vendor + 4, &e.edx, 4);
        std::memcpy(vendor + 8, &e.ecx, 4);
        return std::memcmp(vendor, "AuthenticAMD", 12) == 0 ||
               std::memcmp(vendor, "HygonGenuine", 12) == 0;
    }
    return false;
}

void set_field(uint32_t& reg, unsigned shift, unsigned width, uint32_t value) {
    uint32_t mask = ((width == 32 ? 0u : (1u << width)) - 1) << shift;
    reg = (reg & ~mask) | ((value << shift) & mask);
}

// Extended topology leaf (0xB / 0x1F) subleaf for level `index`:
// 0 = SMT (one thread per core), 1 = core (num_cpus cores), 2+ = invalid.
kvm_cpuid_entry2 topology_entry(uint32_t function, uint32_t index, unsigned cpu_index,
                                unsigned num_cpus) {
    constexpr uint32_t kLevelSmt = 1;
    constexpr uint32_t kLevelCore = 2;
    kvm_cpuid_entry2 e{};
    e.function = function;
    e.index = index;
    e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    e.edx = cpu_index;  // x2APIC id
    e.ecx = index & 0xFF;
    if (index == 0) {
        e.eax = 0;  // no SMT bits in the APIC id
        e.ebx = 1;
        e.ecx |= kLevelSmt << 8;
    } else if (index == 1) {
        e.eax = core_id_bits(num_cpus);
        e.ebx = num_cpus;
        e.ecx |= kLevelCore << 8;
    }
    return e;
}

void rewrite_topology_leaf(std::vector<kvm_cpuid_entry2>& entries, uint32_t function,
                           unsigned cpu_index, unsigned num_cpus) {
    auto is_leaf = [function](const kvm_cpuid_entry2& e) { return e.function == function; };
    if (std::none_of(entries.begin(), entries.end(), is_leaf)) return;
    std::erase_if(entries, is_leaf);
    for (uint32_t index = 0; index < 3; ++index)
        entries.push_back(topology_entry(function, index, cpu_index, num_cpus));
}

}  // namespace

unsigned core_id_bits(unsigned num_cpus) {
    unsigned bits = 0;
    while ((1u << bits) < num_cpus) ++bits;
    return bits;
}

void filter_cpuid(std::vector<kvm_cpuid_entry2>& entries, unsigned cpu_index, unsigned num_cpus) {
    if (num_cpus == 0) num_cpus = 1;
    const unsigned bits = core_id_bits(num_cpus);
    const uint32_t id_space = 1u << bits;  // APIC ids reserved for the package
    const bool amd = is_amd_like(entries);

    for (auto& e : entries) {
        switch (e.function) {
            case 0x1:
                set_field(e.ebx, 24, 8, cpu_index);  // initial APIC id
                set_field(e.ebx, 16, 8,
                          std::min(id_space, 255u));  // logical processors per package
                set_field(e.ebx, 8, 8, 8);            // CLFLUSH line: 8 * 8 = 64 bytes
                set_field(e.ebx, 0, 8, 0);            // brand index: none
                e.ecx |= kCpuidLeaf1EcxHypervisor;
                // TSC-deadline (ECX[24]) stays as KVM reports it.
                if (num_cpus > 1)
                    e.edx |= kCpuidLeaf1EdxHtt;
                else
                    e.edx &= ~kCpuidLeaf1EdxHtt;
                break;
            case 0x4:
                // Deterministic cache parameters (Intel). Type 0 ends the list.
                if ((e.eax & 0x1F) == 0) break;
                set_field(e.eax, 26, 6, std::min(id_space, 64u) - 1);  // cores per package - 1
                // Threads sharing the cache - 1: L1/L2 are per core, L3 package-wide.
                set_field(e.eax, 14, 12, ((e.eax >> 5) & 7) >= 3 ? id_space - 1 : 0);
                break;
            case 0x6:
                // Thermal/power management is the host's business; only the
                // always-running APIC timer is meaningful in a guest.
                e.eax &= kCpuidLeaf6EaxArat;
                e.ebx = e.ecx = e.edx = 0;
                break;
            case 0xD:
                if (e.index == 0) e.ebx = e.ecx;
                break;
            case 0xA:
                // No virtual PMU is configured.
                e.eax = e.ebx = e.ecx = e.edx = 0;
                break;
            case 0x80000008:
                if (!amd) break;
                set_field(e.ecx, 0, 8, num_cpus - 1);  // NC: cores - 1
                set_field(e.ecx, 12, 4, bits);         // ApicIdCoreIdSize
                break;
            case 0x8000001D:
                // AMD cache topology, like leaf 4: type 0 ends the list.
                if ((e.eax & 0x1F) == 0) break;
                set_field(e.eax, 14, 12, ((e.eax >> 5) & 7) >= 3 ? id_space - 1 : 0);
                break;
            case 0x8000001E:
                e.eax = cpu_index;         // extended APIC id
                e.ebx = cpu_index & 0xFF;  // compute unit id; ThreadsPerComputeUnit - 1 = 0
                e.ecx = 0;                 // node 0, one node per package
                e.edx = 0;
                break;
            default:
                break;
        }
    }
    rewrite_topology_leaf(entries, 0xB, cpu_index, num_cpus);
    rewrite_topology_leaf(entries, 0x1F, cpu_index, num_cpus);
}

uint64_t initial_xcr0(const std::vector<kvm_cpuid_entry2>& entries) {
    bool xsave = false;
    for (const auto& e : entries)
        if (e.function == 1) xsave = e.ecx & kCpuidLeaf1EcxXsave;
    if (!xsave) return 0;
    for (const auto& e : entries)
        if (e.function == 0xD && e.index == 0)
            return (uint64_t(e.edx) << 32 | e.eax) | 1;  // x87 can never be off
    return 0;
}

}  // namespace rv::x86
