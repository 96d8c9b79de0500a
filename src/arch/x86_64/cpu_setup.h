// Initial 64-bit CPU state for the Linux 64-bit boot protocol: identity-mapped
// page tables, a boot GDT with __BOOT_CS = 0x10 / __BOOT_DS = 0x18, and the
// kvm_regs / kvm_sregs values. Nothing here issues ioctls: the VMM reads the
// vCPU's registers, lets these functions fill them, and writes them back.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>

#include "base/error.h"
#include "memory/guest_memory.h"

namespace rv::x86 {

inline constexpr uint16_t kBootCsSelector = 0x10;
inline constexpr uint16_t kBootDsSelector = 0x18;
inline constexpr uint16_t kBootTssSelector = 0x20;

inline constexpr uint64_t kCr0Pe = 1ull << 0;
inline constexpr uint64_t kCr0Et = 1ull << 4;
inline constexpr uint64_t kCr0Nw = 1ull << 29;
inline constexpr uint64_t kCr0Cd = 1ull << 30;
inline constexpr uint64_t kCr0Pg = 1ull << 31;
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferLma = 1ull << 10;

inline constexpr uint64_t kPtePresent = 1ull << 0;
inline constexpr uint64_t kPteWritable = 1ull << 1;
inline constexpr uint64_t kPtePageSize = 1ull << 7;  // 2 MiB page in a PD entry

// Builds a legacy segment descriptor from its parts. `flags` holds the access
// byte in bits 0..7 and the G/DB/L/AVL nibble in bits 12..15, as in
// Linux's GDT_ENTRY() macro.
constexpr uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
    return ((uint64_t{base} & 0xFF000000) << 32) | ((uint64_t{flags} & 0xF0FF) << 40) |
           ((uint64_t{limit} & 0x000F0000) << 32) | ((uint64_t{base} & 0x00FFFFFF) << 16) |
           (uint64_t{limit} & 0x0000FFFF);
}

// Slots 0 and 1 are null so that code and data land on the selectors Linux's
// boot protocol names. Slots 4..5 hold a 16-byte busy 64-bit TSS descriptor:
// VM entry requires a usable TR even though Linux never uses this one.
inline constexpr std::array<uint64_t, 6> kBootGdt = {
    0,
    0,
    gdt_entry(0xA09B, 0, 0xFFFFF),  // code: G, L, present, DPL0, exec/read, accessed
    gdt_entry(0xC093, 0, 0xFFFFF),  // data: G, DB, present, DPL0, read/write, accessed
    gdt_entry(0x008B, 0, 0x67),     // TSS (low half): present, busy 64-bit TSS
    0,                              // TSS (high half): base bits 63..32
};

// Decodes a GDT descriptor into the form KVM_SET_SREGS takes.
kvm_segment segment_from_gdt(uint64_t entry, uint16_t selector);

// Writes PML4 -> PDPT -> 4 PDs identity-mapping [0, 4 GiB) with 2 MiB pages.
Result<void> write_page_tables(const GuestMemory& memory);

// Writes kBootGdt at kGdtAddr and an empty IDT at kIdtAddr.
Result<void> write_gdt_idt(const GuestMemory& memory);

// Puts the vCPU in 64-bit long mode with paging from write_page_tables and
// the segments from kBootGdt. Fields not listed (apic_base, cr8,
// interrupt_bitmap) are left as the caller read them from KVM.
void setup_long_mode_sregs(kvm_sregs& sregs);

// rip = entry, rsi = boot_params, rflags = reserved bit 1 only (IF clear,
// as the boot protocol requires); every other GPR zero.
void setup_boot_regs(kvm_regs& regs, GuestAddress entry, GuestAddress boot_params);

}  // namespace rv::x86
