#include "arch/x86_64/layout.h"

#include <algorithm>

namespace rv::x86 {

Result<MemoryLayout> MemoryLayout::for_size(uint64_t bytes) {
    if (bytes < kMinGuestMemory)
        return make_error("guest memory of {} bytes is too small (minimum {} MiB)", bytes,
                          kMinGuestMemory / kMiB);
    if (bytes % kPageSize)
        return make_error("guest memory size {:#x} is not a multiple of 4 KiB", bytes);
    uint64_t low = std::min(bytes, kPciHoleStart);
    uint64_t high_size = bytes - low;
    uint64_t high_end = 0;
    if (high_size && __builtin_add_overflow(k4GiB, high_size, &high_end))
        return make_error("guest memory size {:#x} overflows the address space", bytes);

    MemoryLayout layout;
    layout.low_ram_end = low;
    layout.high_ram_end = high_end;
    layout.ram.push_back({GuestAddress(0), low});
    if (high_size) layout.ram.push_back({GuestAddress(k4GiB), high_size});

    // The EBDA, VGA window and BIOS area are backed by RAM (tables live there)
    // but reserved, so the guest does not allocate them.
    layout.e820.push_back({0, kEbdaStart, kE820Ram});
    layout.e820.push_back({kEbdaStart, kHighMemStart - kEbdaStart, kE820Reserved});
    layout.e820.push_back({kHighMemStart, low - kHighMemStart, kE820Ram});
    // The PCI hole is left out of the map (not reserved): Linux treats the
    // largest gap below 4 GiB as the window for PCI MMIO.
    if (high_size) layout.e820.push_back({k4GiB, high_size, kE820Ram});
    return layout;
}

}  // namespace rv::x86
