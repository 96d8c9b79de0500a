#include "arch/x86_64/cpuid.h"

#include <gtest/gtest.h>

#include <cstring>

namespace rv::x86 {
namespace {

kvm_cpuid_entry2 entry(uint32_t function, uint32_t index, uint32_t eax, uint32_t ebx, uint32_t ecx,
                       uint32_t edx) {
    kvm_cpuid_entry2 e{};
    e.function = function;
    e.index = index;
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = ecx;
    e.edx = edx;
    return e;
}

kvm_cpuid_entry2 vendor_leaf(uint32_t max_leaf, const char (&vendor)[13]) {
    uint32_t regs[3];
    std::memcpy(regs, vendor, 12);
    return entry(0, 0, max_leaf, regs[0], regs[2], regs[1]);  // EBX, EDX, ECX order
}

// Cache descriptor for leaf 4 / 0x8000001D: type in EAX[4:0], level in EAX[7:5].
uint32_t cache_eax(uint32_t type, uint32_t level) {
    return type | (level << 5) | (1u << 8);
}

std::vector<kvm_cpuid_entry2> intel_list() {
    return {
        vendor_leaf(0x1F, "GenuineIntel"),
        entry(1, 0, 0x000906EA, 0xFFFFFFFF, 0x7FFAFBFF | (1u << 24), 0xBFEBFBFF),
        entry(4, 0, cache_eax(1, 1) | (0x3Fu << 26) | (0xFFFu << 14), 0x1C0003F, 63, 0),
        entry(4, 1, cache_eax(2, 1), 0x1C0003F, 63, 0),
        entry(4, 2, cache_eax(3, 2), 0x1C0003F, 1023, 0),
        entry(4, 3, cache_eax(3, 3), 0x3C0003F, 12287, 6),
        entry(4, 4, 0, 0, 0, 0),
        entry(6, 0, 0xFFFF, 0xFF, 0xFF, 0xFF),
        entry(7, 0, 0, 0x029C6FBF, 0x40000000, 0xBC000400),
        entry(0xA, 0, 0x07300404, 0, 0, 0x603),
        entry(0xB, 0, 1, 2, 0x100, 7),
        entry(0x40000000, 0, 0x40000001, 0x4B4D564B, 0x564B4D56, 0x4D),
        entry(0x80000000, 0, 0x80000008, 0, 0, 0),
        entry(0x80000001, 0, 0, 0, 0x121, 0x2C100800),
        entry(0x80000008, 0, 0x3027, 0, 0xAB, 0),
    };
}

const kvm_cpuid_entry2* find(const std::vector<kvm_cpuid_entry2>& list, uint32_t function,
                             uint32_t index = 0) {
    for (const auto& e : list)
        if (e.function == function && e.index == index) return &e;
    return nullptr;
}

TEST(Cpuid, CoreIdBits) {
    EXPECT_EQ(core_id_bits(1), 0u);
    EXPECT_EQ(core_id_bits(2), 1u);
    EXPECT_EQ(core_id_bits(3), 2u);
    EXPECT_EQ(core_id_bits(4), 2u);
    EXPECT_EQ(core_id_bits(5), 3u);
    EXPECT_EQ(core_id_bits(64), 6u);
}

TEST(Cpuid, Leaf1Topology) {
    auto list = intel_list();
    filter_cpuid(list, 2, 4);
    const auto* l1 = find(list, 1);
    ASSERT_NE(l1, nullptr);
    EXPECT_EQ(l1->ebx >> 24, 2u);           // APIC id
    EXPECT_EQ((l1->ebx >> 16) & 0xFF, 4u);  // logical processors
    EXPECT_EQ((l1->ebx >> 8) & 0xFF, 8u);   // 64-byte CLFLUSH
    EXPECT_EQ(l1->ebx & 0xFF, 0u);
    EXPECT_TRUE(l1->ecx & kCpuidLeaf1EcxHypervisor);
    EXPECT_TRUE(l1->ecx & kCpuidLeaf1EcxTscDeadline);
    EXPECT_TRUE(l1->edx & kCpuidLeaf1EdxHtt);
    EXPECT_EQ(l1->eax, 0x000906EAu);  // family/model/stepping pass through
}

TEST(Cpuid, SingleCpuClearsHtt) {
    auto list = intel_list();
    filter_cpuid(list, 0, 1);
    const auto* l1 = find(list, 1);
    EXPECT_EQ(l1->ebx >> 16, 1u);  // APIC id 0, one logical processor
    EXPECT_FALSE(l1->edx & kCpuidLeaf1EdxHtt);
}

TEST(Cpuid, TscDeadlineNotInventedWhenAbsent) {
    auto list = intel_list();
    list[1].ecx &= ~kCpuidLeaf1EcxTscDeadline;
    filter_cpuid(list, 0, 2);
    EXPECT_FALSE(find(list, 1)->ecx & kCpuidLeaf1EcxTscDeadline);
}

TEST(Cpuid, Leaf4CacheSharing) {
    auto list = intel_list();
    filter_cpuid(list, 1, 6);  // 6 CPUs -> 3 core bits -> 8 ids
    for (uint32_t i = 0; i < 4; ++i) {
        const auto* c = find(list, 4, i);
        ASSERT_NE(c, nullptr);
        EXPECT_EQ(c->eax >> 26, 7u) << i;
        uint32_t sharing = (c->eax >> 14) & 0xFFF;
        EXPECT_EQ(sharing, i == 3 ? 7u : 0u) << i;  // only L3 is shared
        EXPECT_EQ(c->eax & 0x3FFF, cache_eax(i < 2 ? i + 1 : 3, i < 2 ? 1 : i)) << i;
    }
    EXPECT_EQ(find(list, 4, 4)->eax, 0u);  // terminator untouched
}

TEST(Cpuid, X2ApicTopologyLeaf) {
    auto list = intel_list();
    filter_cpuid(list, 3, 4);
    const auto* smt = find(list, 0xB, 0);
    const auto* core = find(list, 0xB, 1);
    const auto* end = find(list, 0xB, 2);
    ASSERT_NE(smt, nullptr);
    ASSERT_NE(core, nullptr);
    ASSERT_NE(end, nullptr);
    EXPECT_EQ(smt->eax, 0u);
    EXPECT_EQ(smt->ebx, 1u);
    EXPECT_EQ(smt->ecx, 0x100u);
    EXPECT_EQ(smt->edx, 3u);
    EXPECT_EQ(core->eax, 2u);
    EXPECT_EQ(core->ebx, 4u);
    EXPECT_EQ(core->ecx, 0x201u);
    EXPECT_EQ(core->edx, 3u);
    EXPECT_EQ(end->ecx & 0xFF00, 0u);  // level type invalid ends the enumeration
    EXPECT_EQ(end->ecx & 0xFF, 2u);
    EXPECT_EQ(end->edx, 3u);
    EXPECT_TRUE(smt->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
    // The host's single 0xB entry was replaced, not duplicated; 0x1F was absent and stays so.
    size_t count = 0;
    for (const auto& e : list) count += e.function == 0xB;
    EXPECT_EQ(count, 3u);
    EXPECT_EQ(find(list, 0x1F), nullptr);
}

TEST(Cpuid, Leaf1FRewrittenWhenPresent) {
    auto list = intel_list();
    list.push_back(entry(0x1F, 0, 1, 2, 0x100, 0));
    list.push_back(entry(0x1F, 1, 5, 16, 0x201, 0));
    list.push_back(entry(0x1F, 2, 7, 32, 0x502, 0));  // die level from a big host
    filter_cpuid(list, 1, 2);
    EXPECT_EQ(find(list, 0x1F, 1)->eax, 1u);
    EXPECT_EQ(find(list, 0x1F, 1)->ebx, 2u);
    EXPECT_EQ(find(list, 0x1F, 2)->ecx & 0xFF00, 0u);
    EXPECT_EQ(find(list, 0x1F, 2)->edx, 1u);
}

TEST(Cpuid, PowerManagementAndPmuHidden) {
    auto list = intel_list();
    filter_cpuid(list, 0, 2);
    const auto* pm = find(list, 6);
    EXPECT_EQ(pm->eax, kCpuidLeaf6EaxArat);
    EXPECT_EQ(pm->ebx | pm->ecx | pm->edx, 0u);
    const auto* pmu = find(list, 0xA);
    EXPECT_EQ(pmu->eax | pmu->ebx | pmu->ecx | pmu->edx, 0u);
}

TEST(Cpuid, OtherLeavesPassThrough) {
    auto before = intel_list();
    auto list = before;
    filter_cpuid(list, 1, 2);
    for (uint32_t fn : {0u, 7u, 0x40000000u, 0x80000000u, 0x80000001u}) {
        const auto* a = find(before, fn);
        const auto* b = find(list, fn);
        ASSERT_NE(b, nullptr);
        EXPECT_EQ(std::memcmp(a, b, sizeof(*a)), 0) << std::hex << fn;
    }
    // 0x80000008 ECX is only topology on AMD; on Intel it is left alone.
    EXPECT_EQ(find(list, 0x80000008)->ecx, 0xABu);
}

TEST(Cpuid, AmdTopologyLeaves) {
    std::vector<kvm_cpuid_entry2> list = {
        vendor_leaf(0x10, "AuthenticAMD"),
        entry(1, 0, 0x00830F10, 0, 0, 0),
        entry(0x80000008, 0, 0x3030, 0, 0x703F, 0),
        entry(0x8000001D, 0, cache_eax(1, 1) | (1u << 14), 0, 0, 0),
        entry(0x8000001D, 3, cache_eax(3, 3) | (15u << 14), 0, 0, 0),
        entry(0x8000001E, 0, 0x55, 0x105, 0x301, 0),
    };
    filter_cpuid(list, 2, 3);
    const auto* sz = find(list, 0x80000008);
    EXPECT_EQ(sz->ecx & 0xFF, 2u);         // NC = 3 - 1
    EXPECT_EQ((sz->ecx >> 12) & 0xF, 2u);  // 2 APIC id bits for cores
    EXPECT_EQ(sz->eax, 0x3030u);           // address sizes pass through
    EXPECT_EQ((find(list, 0x8000001D, 0)->eax >> 14) & 0xFFF, 0u);
    EXPECT_EQ((find(list, 0x8000001D, 3)->eax >> 14) & 0xFFF, 3u);
    const auto* ext = find(list, 0x8000001E);
    EXPECT_EQ(ext->eax, 2u);
    EXPECT_EQ(ext->ebx, 2u);
    EXPECT_EQ(ext->ecx, 0u);
    EXPECT_EQ(find(list, 1)->ebx >> 24, 2u);
}


// Leaf 0xD: x87|SSE|AVX offered (EAX = 7), the sizes for XCR0 = 1 (EBX = 576)
// and for all offered features (ECX = 832), as KVM reports them at creation.
std::vector<kvm_cpuid_entry2> xsave_list(bool xsave) {
    return {
        vendor_leaf(0xD, "AuthenticAMD"),
        entry(1, 0, 0x00800F12, 0, xsave ? kCpuidLeaf1EcxXsave : 0, 0),
        entry(0xD, 0, 0x7, 576, 832, 0),
        entry(0xD, 1, 0x5, 0, 0, 0),
        entry(0xD, 2, 256, 576, 0, 0),
    };
}

TEST(Cpuid, XsaveSizeMatchesTheFeaturesTheGuestWillEnable) {
    auto entries = xsave_list(true);
    filter_cpuid(entries, 0, 2);
    const auto* leaf = find(entries, 0xD, 0);
    ASSERT_NE(leaf, nullptr);
    EXPECT_EQ(leaf->eax, 0x7u);
    EXPECT_EQ(leaf->ebx, 832u);  // was 576: Linux found 832 != 576 and turned XSAVE off
    EXPECT_EQ(leaf->ecx, 832u);
    EXPECT_EQ(find(entries, 0xD, 2)->eax, 256u);  // the component leaves pass through
}

TEST(Cpuid, InitialXcr0IsEveryOfferedComponent) {
    EXPECT_EQ(initial_xcr0(xsave_list(true)), 0x7u);
    EXPECT_EQ(initial_xcr0(xsave_list(false)), 0u);  // no XSAVE: XCR0 is not touched
    auto high = xsave_list(true);
    high[2].edx = 0x1;  // a component above bit 31
    EXPECT_EQ(initial_xcr0(high), 0x1'0000'0007u);
    high[2].eax = 0x6;  // x87 is always on
    EXPECT_EQ(initial_xcr0(high), 0x1'0000'0007u);
}

}  // namespace
}  // namespace rv::x86
