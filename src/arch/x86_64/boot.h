// Loads a bzImage for the Linux 64-bit boot protocol: copies the
// protected-mode kernel, places the initrd and command line, fills the zero
// page, and writes the boot page tables and GDT. The VMM then applies
// setup_long_mode_sregs() / setup_boot_regs() (cpu_setup.h) with the returned
// addresses.
#pragma once

#include <functional>

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "arch/x86_64/boot_params.h"
#include "arch/x86_64/bzimage.h"
#include "arch/x86_64/kernel_payload.h"
#include "arch/x86_64/layout.h"
#include "base/error.h"
#include "memory/guest_memory.h"

namespace rv::x86 {

struct BootInfo {
    GuestAddress entry;        // 64-bit entry: kernel load address + 0x200 -> rip
    GuestAddress boot_params;  // zero page -> rsi
    GuestAddress kernel_load;  // where the protected-mode kernel was copied
    uint64_t kernel_end{0};    // exclusive end of what the kernel may use while booting
    GuestAddress cmdline;
    uint64_t cmdline_size{0};  // bytes written, including the NUL
    GuestAddress initrd;       // 0 with initrd_size 0 when there is none
    uint64_t initrd_size{0};
    GuestAddress page_table_root;  // CR3
    uint16_t protocol_version{0};
};

// Computes where an initrd of `size` bytes goes: the highest page-aligned
// address whose end stays below min(initrd_addr_max + 1, top of low RAM)
// and whose start is at or above `kernel_end`.
Result<GuestAddress> place_initrd(const BzImage& kernel, const MemoryLayout& layout,
                                  uint64_t kernel_end, uint64_t size);

// Fills a zero page: header copied from the kernel, loader fields, e820.
// Exposed for tests; load_linux writes the result to kBootParamsAddr.
Result<BootParams> make_boot_params(const BzImage& kernel, const MemoryLayout& layout,
                                    const BootInfo& info, std::optional<GuestAddress> acpi_rsdp);

// acpi_rsdp (from setup_acpi) goes to boot_params.acpi_rsdp_addr; without it
// Linux still finds the RSDP by scanning 0xE0000..0xFFFFF.
Result<BootInfo> load_linux(const GuestMemory& memory, std::span<const uint8_t> kernel,
                            std::optional<std::span<const uint8_t>> initrd,
                            std::string_view cmdline, const MemoryLayout& layout,
                            std::optional<GuestAddress> acpi_rsdp = std::nullopt);

// The same boot, but from the bzImage's decompressed ELF payload (vmlinux):
// segments at their physical addresses, entry at the ELF's startup_64. The
// bzImage still supplies the setup header for the zero page. write_segment
// fills one segment's file bytes into guest memory (so a cached vmlinux can
// be read straight from its file); the loader zeroes the rest (BSS).
using SegmentWriter = std::function<Result<void>(const ElfSegment& segment)>;
Result<BootInfo> load_linux_elf(const GuestMemory& memory, std::span<const uint8_t> bzimage,
                                const ElfKernel& elf, const SegmentWriter& write_segment,
                                std::optional<std::span<const uint8_t>> initrd,
                                std::string_view cmdline, const MemoryLayout& layout,
                                std::optional<GuestAddress> acpi_rsdp = std::nullopt);

// A plain ELF vmlinux (what PUT /boot-source may name instead of a bzImage;
// Firecracker boots these): segments at their physical addresses, entry at
// the ELF's entry point (startup_64), and a setup header made up for the zero
// page as the bzImage would have carried it (vmlinux_setup_header).
Result<BootInfo> load_linux_vmlinux(const GuestMemory& memory, std::span<const uint8_t> vmlinux,
                                    std::optional<std::span<const uint8_t>> initrd,
                                    std::string_view cmdline, const MemoryLayout& layout,
                                    std::optional<GuestAddress> acpi_rsdp = std::nullopt);
BzImage vmlinux_setup_header(const ElfKernel& elf);
bool is_elf(std::span<const uint8_t> kernel);

}  // namespace rv::x86
