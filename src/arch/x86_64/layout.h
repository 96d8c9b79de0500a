// Guest physical memory map for booting Linux on x86-64, and the e820 map
// that describes it to the guest.
//
//   0x00000500  GDT (6 slots)             0x00000540  IDT (empty)
//   0x00007000  boot_params (zero page)   0x00009000  PML4, then PDPT, 4 PDs
//   0x00020000  kernel command line (max 64 KiB)
//   0x0009FC00  EBDA / MP table           -> reserved up to 1 MiB
//   0x000E0000  ACPI tables (RSDP, ...)   (inside the reserved BIOS area)
//   0x00100000  protected-mode kernel     -> RAM up to min(size, 3 GiB)
//   0xC0000000  PCI hole (MMIO, IOAPIC 0xFEC00000, LAPIC 0xFEE00000)
//   0x100000000 the rest of RAM when size > 3 GiB
#pragma once

#include <cstdint>
#include <vector>

#include "arch/x86_64/boot_params.h"
#include "base/error.h"
#include "memory/guest_memory.h"

namespace rv::x86 {

inline constexpr uint64_t kPageSize = 0x1000;
inline constexpr uint64_t kMiB = 1ull << 20;
inline constexpr uint64_t kGiB = 1ull << 30;

inline constexpr uint64_t kGdtAddr = 0x500;
inline constexpr uint64_t kGdtSlots = 6;  // null, null, code, data, 16-byte TSS
inline constexpr uint64_t kIdtAddr = 0x540;
inline constexpr uint64_t kBootParamsAddr = 0x7000;
inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xA000;
inline constexpr uint64_t kPdAddr = 0xB000;  // 4 consecutive page directories
inline constexpr uint64_t kPageTablesEnd = kPdAddr + 4 * kPageSize;
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineMaxSize = 0x10000;  // including the NUL
inline constexpr uint64_t kEbdaStart = 0x9FC00;       // end of usable low RAM
inline constexpr uint64_t kMpTableAddr = kEbdaStart;
inline constexpr uint64_t kAcpiStart = 0xE0000;
inline constexpr uint64_t kAcpiEnd = 0x100000;
inline constexpr uint64_t kHighMemStart = 0x100000;  // 1 MiB
inline constexpr uint64_t kKernelLoadAddr = kHighMemStart;
inline constexpr uint64_t kPciHoleStart = 3 * kGiB;
inline constexpr uint64_t k4GiB = 4 * kGiB;
inline constexpr uint64_t kIoApicAddr = 0xFEC00000;
inline constexpr uint64_t kLapicAddr = 0xFEE00000;

// Below this a guest cannot hold the fixed boot structures plus a kernel.
inline constexpr uint64_t kMinGuestMemory = 4 * kMiB;

struct MemoryLayout {
    // Guest RAM regions, ready for GuestMemory::create. The region below the
    // PCI hole starts at 0 and includes the reserved BIOS area, because the
    // ACPI tables and MP table are written there.
    std::vector<GuestMemory::RegionSpec> ram;
    std::vector<E820Entry> e820;
    uint64_t low_ram_end{0};   // exclusive end of RAM below the PCI hole
    uint64_t high_ram_end{0};  // exclusive end of RAM above 4 GiB, 0 if none

    // Splits `bytes` of guest RAM around the PCI hole. bytes must be a
    // multiple of 4 KiB and at least kMinGuestMemory.
    static Result<MemoryLayout> for_size(uint64_t bytes);
};

}  // namespace rv::x86
