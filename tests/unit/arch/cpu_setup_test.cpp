#include "arch/x86_64/cpu_setup.h"

#include <gtest/gtest.h>

#include "arch/x86_64/layout.h"
#include "arch/x86_64/msrs.h"

namespace rv::x86 {
namespace {

GuestMemory make_memory() {
    GuestMemory::RegionSpec spec{GuestAddress(0), 16 * kMiB};
    auto mem = GuestMemory::create(std::span(&spec, 1));
    EXPECT_TRUE(mem);
    return std::move(*mem);
}

uint64_t read_u64(const GuestMemory& mem, uint64_t addr) {
    auto v = mem.read_obj<uint64_t>(GuestAddress(addr));
    EXPECT_TRUE(v);
    return v.value_or(0xDEAD);
}

TEST(PageTables, IdentityMapFirstFourGiB) {
    GuestMemory mem = make_memory();
    ASSERT_TRUE(mem.fill(GuestAddress(kPml4Addr), 0xCC, kPageTablesEnd - kPml4Addr));
    ASSERT_TRUE(write_page_tables(mem));

    EXPECT_EQ(read_u64(mem, kPml4Addr), kPdptAddr | kPtePresent | kPteWritable);
    EXPECT_EQ(read_u64(mem, kPml4Addr + 8), 0u);  // only the first 512 GiB slot
    EXPECT_EQ(read_u64(mem, kPml4Addr + 511 * 8), 0u);
    for (uint64_t i = 0; i < 4; ++i)
        EXPECT_EQ(read_u64(mem, kPdptAddr + i * 8), (kPdAddr + i * kPageSize) | 3);
    EXPECT_EQ(read_u64(mem, kPdptAddr + 4 * 8), 0u);

    constexpr uint64_t kLarge = kPtePresent | kPteWritable | kPtePageSize;
    EXPECT_EQ(read_u64(mem, kPdAddr), 0 | kLarge);
    EXPECT_EQ(read_u64(mem, kPdAddr + 8), 0x200000 | kLarge);
    EXPECT_EQ(read_u64(mem, kPdAddr + kPageSize), kGiB | kLarge);
    EXPECT_EQ(read_u64(mem, kPdAddr + 3 * kPageSize + 511 * 8), (4 * kGiB - 2 * kMiB) | kLarge);

    // Walk a few addresses through the tables: each maps to itself.
    for (uint64_t va : {0x0ull, 0x100200ull, 0x7000ull, 0xBFFFF000ull, 0xFEE00000ull}) {
        uint64_t pml4e = read_u64(mem, kPml4Addr + ((va >> 39) & 511) * 8);
        uint64_t pdpte = read_u64(mem, (pml4e & ~0xFFFull) + ((va >> 30) & 511) * 8);
        uint64_t pde = read_u64(mem, (pdpte & ~0xFFFull) + ((va >> 21) & 511) * 8);
        ASSERT_TRUE(pde & kPtePageSize);
        EXPECT_EQ((pde & ~0x1FFFFFull) | (va & 0x1FFFFF), va);
    }
}

TEST(PageTables, FailsWithoutMemory) {
    GuestMemory::RegionSpec spec{GuestAddress(0x100000), kMiB};
    auto mem = GuestMemory::create(std::span(&spec, 1));
    ASSERT_TRUE(mem);
    EXPECT_FALSE(write_page_tables(*mem));
    EXPECT_FALSE(write_gdt_idt(*mem));
}

TEST(Gdt, DescriptorsMatchLinuxBootSelectors) {
    GuestMemory mem = make_memory();
    ASSERT_TRUE(write_gdt_idt(mem));
    EXPECT_EQ(read_u64(mem, kGdtAddr), 0u);
    EXPECT_EQ(read_u64(mem, kGdtAddr + 0x08), 0u);
    EXPECT_EQ(read_u64(mem, kGdtAddr + kBootCsSelector), 0x00AF9B000000FFFFull);
    EXPECT_EQ(read_u64(mem, kGdtAddr + kBootDsSelector), 0x00CF93000000FFFFull);
    EXPECT_EQ(read_u64(mem, kGdtAddr + kBootTssSelector), 0x00008B0000000067ull);
    EXPECT_EQ(read_u64(mem, kIdtAddr), 0u);
    // The GDT ends before the IDT begins.
    EXPECT_LE(kGdtAddr + sizeof(kBootGdt), kIdtAddr);
}

TEST(Gdt, SegmentDecoding) {
    kvm_segment cs = segment_from_gdt(kBootGdt[2], kBootCsSelector);
    EXPECT_EQ(cs.base, 0u);
    EXPECT_EQ(cs.limit, 0xFFFFFFFFu);
    EXPECT_EQ(cs.selector, 0x10);
    EXPECT_EQ(cs.type, 0xB);
    EXPECT_EQ(cs.present, 1);
    EXPECT_EQ(cs.dpl, 0);
    EXPECT_EQ(cs.s, 1);
    EXPECT_EQ(cs.l, 1);
    EXPECT_EQ(cs.db, 0);  // must be 0 when L is set
    EXPECT_EQ(cs.g, 1);
    EXPECT_EQ(cs.unusable, 0);

    kvm_segment ds = segment_from_gdt(kBootGdt[3], kBootDsSelector);
    EXPECT_EQ(ds.type, 0x3);
    EXPECT_EQ(ds.l, 0);
    EXPECT_EQ(ds.db, 1);
    EXPECT_EQ(ds.limit, 0xFFFFFFFFu);

    kvm_segment tr = segment_from_gdt(kBootGdt[4], kBootTssSelector);
    EXPECT_EQ(tr.type, 0xB);  // busy 64-bit TSS
    EXPECT_EQ(tr.s, 0);
    EXPECT_EQ(tr.g, 0);
    EXPECT_EQ(tr.limit, 0x67u);

    kvm_segment base = segment_from_gdt(gdt_entry(0x0093, 0x12345678, 0xABCDE), 0x8);
    EXPECT_EQ(base.base, 0x12345678u);
    EXPECT_EQ(base.limit, 0xABCDEu);
    EXPECT_EQ(segment_from_gdt(0, 0).unusable, 1);
}

TEST(Sregs, LongModeSetup) {
    kvm_sregs sregs{};
    sregs.cr0 = 0x60000010;  // KVM's reset value: CD | NW | ET
    sregs.apic_base = 0xFEE00900;
    sregs.efer = 0;
    setup_long_mode_sregs(sregs);
    EXPECT_EQ(sregs.cr0, kCr0Pe | kCr0Et | kCr0Pg);
    EXPECT_EQ(sregs.cr3, kPml4Addr);
    EXPECT_TRUE(sregs.cr4 & kCr4Pae);
    EXPECT_EQ(sregs.efer, kEferLme | kEferLma);
    EXPECT_EQ(sregs.apic_base, 0xFEE00900u);  // untouched
    EXPECT_EQ(sregs.cs.selector, 0x10);
    EXPECT_EQ(sregs.cs.l, 1);
    for (const kvm_segment* s : {&sregs.ds, &sregs.es, &sregs.fs, &sregs.gs, &sregs.ss}) {
        EXPECT_EQ(s->selector, 0x18);
        EXPECT_EQ(s->type, 0x3);
        EXPECT_EQ(s->present, 1);
    }
    EXPECT_EQ(sregs.tr.selector, 0x20);
    EXPECT_EQ(sregs.tr.present, 1);
    EXPECT_EQ(sregs.ldt.unusable, 1);
    EXPECT_EQ(sregs.gdt.base, kGdtAddr);
    EXPECT_EQ(sregs.gdt.limit, 6 * 8 - 1);
    EXPECT_EQ(sregs.idt.base, kIdtAddr);
    EXPECT_EQ(sregs.idt.limit, 7);
}

TEST(Regs, BootRegisters) {
    kvm_regs regs{};
    regs.rax = 0x1234;
    setup_boot_regs(regs, GuestAddress(0x100200), GuestAddress(0x7000));
    EXPECT_EQ(regs.rip, 0x100200u);
    EXPECT_EQ(regs.rsi, 0x7000u);
    EXPECT_EQ(regs.rflags, 0x2u);
    EXPECT_EQ(regs.rax, 0u);
    EXPECT_EQ(regs.rsp, 0u);
}

TEST(Msrs, BootList) {
    auto msrs = boot_msrs();
    auto find = [&](uint32_t index) -> const MsrValue* {
        for (const auto& m : msrs)
            if (m.index == index) return &m;
        return nullptr;
    };
    for (uint32_t zero : {0x174u, 0x175u, 0x176u, 0xC0000081u, 0xC0000082u, 0xC0000083u,
                          0xC0000084u, 0xC0000102u, 0x10u}) {
        const MsrValue* m = find(zero);
        ASSERT_NE(m, nullptr) << std::hex << zero;
        EXPECT_EQ(m->value, 0u);
    }
    ASSERT_NE(find(0x1A0), nullptr);
    EXPECT_EQ(find(0x1A0)->value & 1, 1u);
    ASSERT_NE(find(0x2FF), nullptr);
    EXPECT_EQ(find(0x2FF)->value, (1u << 11) | 6);
    EXPECT_EQ(msrs.size(), 11u);
}

}  // namespace
}  // namespace rv::x86
