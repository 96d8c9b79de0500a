#include "arch/x86_64/cpu_setup.h"

#include <cstring>

#include "arch/x86_64/layout.h"

namespace rv::x86 {

kvm_segment segment_from_gdt(uint64_t entry, uint16_t selector) {
    kvm_segment seg{};
    seg.base = ((entry >> 16) & 0xFFFFFF) | (((entry >> 56) & 0xFF) << 24);
    uint32_t limit = static_cast<uint32_t>((entry & 0xFFFF) | (((entry >> 48) & 0xF) << 16));
    seg.g = (entry >> 55) & 1;
    // KVM wants the limit in bytes: with G set, the 20-bit limit counts 4 KiB pages.
    seg.limit = seg.g ? (limit << 12) | 0xFFF : limit;
    seg.selector = selector;
    seg.type = (entry >> 40) & 0xF;
    seg.s = (entry >> 44) & 1;
    seg.dpl = (entry >> 45) & 3;
    seg.present = (entry >> 47) & 1;
    seg.avl = (entry >> 52) & 1;
    seg.l = (entry >> 53) & 1;
    seg.db = (entry >> 54) & 1;
    seg.unusable = seg.present ? 0 : 1;
    return seg;
}

Result<void> write_page_tables(const GuestMemory& memory) {
    // Build the tables on the host and copy them in one write each, so a
    // failure leaves no half-written table behind a valid entry.
    std::array<uint64_t, 512> pml4{};
    std::array<uint64_t, 512> pdpt{};
    pml4[0] = kPdptAddr | kPtePresent | kPteWritable;
    for (uint64_t i = 0; i < 4; ++i) {
        uint64_t pd_addr = kPdAddr + i * kPageSize;
        pdpt[i] = pd_addr | kPtePresent | kPteWritable;
        std::array<uint64_t, 512> pd{};
        for (uint64_t j = 0; j < 512; ++j)
            pd[j] = (i * kGiB + j * 2 * kMiB) | kPtePresent | kPteWritable | kPtePageSize;
        RV_TRY_VOID(memory.write_obj(GuestAddress(pd_addr), pd));
    }
    RV_TRY_VOID(memory.write_obj(GuestAddress(kPdptAddr), pdpt));
    RV_TRY_VOID(memory.write_obj(GuestAddress(kPml4Addr), pml4));
    return {};
}

Result<void> write_gdt_idt(const GuestMemory& memory) {
    RV_TRY_VOID(memory.write_obj(GuestAddress(kGdtAddr), kBootGdt));
    // One zero gate: any exception before Linux loads its own IDT is fatal
    // either way, and a zeroed IDT makes that a clean triple fault.
    RV_TRY_VOID(memory.write_obj(GuestAddress(kIdtAddr), uint64_t{0}));
    return {};
}

void setup_long_mode_sregs(kvm_sregs& sregs) {
    kvm_segment code = segment_from_gdt(kBootGdt[2], kBootCsSelector);
    kvm_segment data = segment_from_gdt(kBootGdt[3], kBootDsSelector);
    kvm_segment tss = segment_from_gdt(kBootGdt[4], kBootTssSelector);
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = tss;
    // LDT unused; mark it so VM entry checks ignore it.
    sregs.ldt = kvm_segment{};
    sregs.ldt.type = 2;  // LDT
    sregs.ldt.unusable = 1;

    sregs.gdt.base = kGdtAddr;
    sregs.gdt.limit = sizeof(kBootGdt) - 1;
    sregs.idt.base = kIdtAddr;
    sregs.idt.limit = sizeof(uint64_t) - 1;

    // KVM's reset CR0 has CD|NW set; clear them so the boot runs cached.
    sregs.cr0 = (sregs.cr0 & ~(kCr0Cd | kCr0Nw)) | kCr0Pe | kCr0Et | kCr0Pg;
    sregs.cr3 = kPml4Addr;
    sregs.cr4 |= kCr4Pae;
    sregs.efer |= kEferLme | kEferLma;
}

void setup_boot_regs(kvm_regs& regs, GuestAddress entry, GuestAddress boot_params) {
    regs = kvm_regs{};
    regs.rflags = 0x2;  // bit 1 is reserved and reads as one
    regs.rip = entry.value;
    regs.rsi = boot_params.value;
}

}  // namespace rv::x86
