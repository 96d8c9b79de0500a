#include "arch/x86_64/boot.h"

#include <algorithm>
#include <cstring>

#include "arch/x86_64/cpu_setup.h"
#include "arch/x86_64/kernel_payload.h"

namespace rv::x86 {

namespace {

// heap_end_ptr is an offset from the real-mode setup segment; 0xFE00 is the
// conventional value (the 16-bit setup code is never run in a 64-bit boot).
constexpr uint16_t kHeapEndPtr = 0xFE00;

// libstdc++ 12's std::expected has no transform_error yet.
Result<void> with_context(Result<void> result, std::string_view what) {
    if (!result) return std::unexpected(result.error().context(what));
    return {};
}

constexpr uint64_t align_down(uint64_t v, uint64_t a) {
    return v & ~(a - 1);
}

bool is_pow2(uint64_t v) {
    return v && !(v & (v - 1));
}

// Where the kernel is copied, and the end of the area it needs while it
// decompresses: a relocatable kernel moves itself to
// max(align_up(load, kernel_alignment), pref_address) and uses init_size bytes
// from there (arch/x86/boot/compressed/head_64.S).
Result<std::pair<uint64_t, uint64_t>> kernel_footprint(const BzImage& k,
                                                       const MemoryLayout& layout) {
    uint64_t load = kKernelLoadAddr;
    if (!k.relocatable) {
        if (k.pref_address < kHighMemStart)
            return make_error("non-relocatable kernel wants load address {:#x}, below 1 MiB",
                              k.pref_address);
        load = k.pref_address;
    }
    uint64_t run = load;
    if (k.relocatable && is_pow2(k.kernel_alignment))
        run = (load + k.kernel_alignment - 1) & ~(uint64_t{k.kernel_alignment} - 1);
    if (k.relocatable) run = std::max(run, k.pref_address);
    uint64_t end = std::max(load + k.kernel_size, run + k.init_size);
    if (end > layout.low_ram_end)
        return make_error("kernel needs memory up to {:#x} but low RAM ends at {:#x}", end,
                          layout.low_ram_end);
    return std::pair{load, end};
}

}  // namespace

Result<GuestAddress> place_initrd(const BzImage& kernel, const MemoryLayout& layout,
                                  uint64_t kernel_end, uint64_t size) {
    // Keep the initrd below the PCI hole even when the kernel could take it
    // above 4 GiB: low RAM is always there and one placement rule is simpler.
    uint64_t limit = layout.low_ram_end;
    if (!kernel.can_load_above_4g()) limit = std::min(limit, uint64_t{kernel.initrd_addr_max} + 1);
    if (size > limit || align_down(limit - size, kPageSize) < kernel_end)
        return make_error(
            "initrd of {} bytes does not fit in guest memory between the kernel end {:#x} and "
            "{:#x}",
            size, kernel_end, limit);
    return GuestAddress(align_down(limit - size, kPageSize));
}

Result<BootParams> make_boot_params(const BzImage& kernel, const MemoryLayout& layout,
                                    const BootInfo& info, std::optional<GuestAddress> acpi_rsdp) {
    if (kernel.setup_header.size() > sizeof(SetupHeader))
        return make_error("setup header of {} bytes is larger than boot_params.hdr",
                          kernel.setup_header.size());
    if (layout.e820.size() > kE820MaxEntries)
        return make_error("{} e820 entries exceed the zero page's {}", layout.e820.size(),
                          kE820MaxEntries);
    BootParams bp{};
    SetupHeader hdr{};
    // SAFETY: SetupHeader is a packed trivially copyable wire struct and the
    // copy is bounded by its size (checked above).
    std::memcpy(&hdr, kernel.setup_header.data(), kernel.setup_header.size());
    hdr.type_of_loader = kLoaderTypeUndefined;
    hdr.loadflags |= kCanUseHeap;
    hdr.heap_end_ptr = kHeapEndPtr;
    hdr.cmd_line_ptr = static_cast<uint32_t>(info.cmdline.value);
    hdr.ramdisk_image = static_cast<uint32_t>(info.initrd.value);
    hdr.ramdisk_size = static_cast<uint32_t>(info.initrd_size);
    bp.hdr = hdr;
    bp.ext_cmd_line_ptr = static_cast<uint32_t>(info.cmdline.value >> 32);
    bp.ext_ramdisk_image = static_cast<uint32_t>(info.initrd.value >> 32);
    bp.ext_ramdisk_size = static_cast<uint32_t>(info.initrd_size >> 32);
    if (acpi_rsdp) bp.acpi_rsdp_addr = acpi_rsdp->value;
    bp.e820_entries = static_cast<uint8_t>(layout.e820.size());
    std::copy(layout.e820.begin(), layout.e820.end(), bp.e820_table);
    return bp;
}

namespace {

// Everything after the kernel itself is in place: initrd, command line, zero
// page, page tables and GDT.
Result<BootInfo> finish_loading(const GuestMemory& memory, const BzImage& image, BootInfo info,
                                std::optional<std::span<const uint8_t>> initrd,
                                std::string_view cmdline, const MemoryLayout& layout,
                                std::optional<GuestAddress> acpi_rsdp) {
    if (initrd && !initrd->empty()) {
        info.initrd = RV_TRY(place_initrd(image, layout, info.kernel_end, initrd->size()));
        info.initrd_size = initrd->size();
        RV_TRY_VOID(with_context(memory.write(info.initrd, *initrd), "loading initrd"));
    }

    RV_TRY_VOID(memory.fill(info.cmdline, 0, kCmdlineMaxSize));
    // SAFETY: viewing chars as bytes; same size and alignment, read only.
    RV_TRY_VOID(memory.write(
        info.cmdline, std::span(reinterpret_cast<const uint8_t*>(cmdline.data()), cmdline.size())));

    BootParams bp = RV_TRY(make_boot_params(image, layout, info, acpi_rsdp));
    RV_TRY_VOID(memory.write_obj(info.boot_params, bp));
    RV_TRY_VOID(write_page_tables(memory));
    RV_TRY_VOID(write_gdt_idt(memory));
    return info;
}

Result<void> check_cmdline(const BzImage& image, std::string_view cmdline) {
    if (cmdline.find('\0') != std::string_view::npos)
        return make_error("kernel command line contains a NUL byte");
    if (cmdline.size() > image.cmdline_size)
        return make_error("kernel command line is {} bytes; this kernel accepts at most {}",
                          cmdline.size(), image.cmdline_size);
    if (cmdline.size() + 1 > kCmdlineMaxSize)
        return make_error("kernel command line is {} bytes; at most {} fit at {:#x}",
                          cmdline.size(), kCmdlineMaxSize - 1, kCmdlineAddr);
    return {};
}

BootInfo base_info(const BzImage& image, std::string_view cmdline) {
    BootInfo info;
    info.protocol_version = image.version;
    info.boot_params = GuestAddress(kBootParamsAddr);
    info.page_table_root = GuestAddress(kPml4Addr);
    info.cmdline = GuestAddress(kCmdlineAddr);
    info.cmdline_size = cmdline.size() + 1;
    return info;
}

}  // namespace

Result<BootInfo> load_linux(const GuestMemory& memory, std::span<const uint8_t> kernel,
                            std::optional<std::span<const uint8_t>> initrd,
                            std::string_view cmdline, const MemoryLayout& layout,
                            std::optional<GuestAddress> acpi_rsdp) {
    BzImage image = RV_TRY(parse_bzimage(kernel));
    RV_TRY_VOID(check_cmdline(image, cmdline));
    auto [load, kernel_end] = RV_TRY(kernel_footprint(image, layout));

    BootInfo info = base_info(image, cmdline);
    info.kernel_load = GuestAddress(load);
    info.kernel_end = kernel_end;
    info.entry = GuestAddress(load + kStartup64Offset);
    RV_TRY_VOID(with_context(
        memory.write(info.kernel_load, kernel.subspan(image.kernel_offset, image.kernel_size)),
        "loading kernel"));
    return finish_loading(memory, image, info, initrd, cmdline, layout, acpi_rsdp);
}

namespace {

Result<BootInfo> load_elf_with(const GuestMemory& memory, const BzImage& image,
                               const ElfKernel& elf, const SegmentWriter& write_segment,
                               std::optional<std::span<const uint8_t>> initrd,
                               std::string_view cmdline, const MemoryLayout& layout,
                               std::optional<GuestAddress> acpi_rsdp) {
    RV_TRY_VOID(check_cmdline(image, cmdline));
    if (elf.lowest < kHighMemStart)
        return make_error("ELF kernel loads at {:#x}, below 1 MiB", elf.lowest);
    // The running kernel uses init_size bytes from its load address (BSS,
    // early page tables and brk beyond the file's segments).
    uint64_t end = std::max(elf.end, elf.lowest + image.init_size);
    if (end > layout.low_ram_end)
        return make_error("kernel needs memory up to {:#x} but low RAM ends at {:#x}", end,
                          layout.low_ram_end);

    BootInfo info = base_info(image, cmdline);
    info.kernel_load = GuestAddress(elf.lowest);
    info.kernel_end = end;
    info.entry = GuestAddress(elf.entry);
    for (const auto& seg : elf.segments) {
        if (!memory.check_range(GuestAddress(seg.paddr), seg.memsz))
            return make_error("kernel segment {:#x}+{:#x} outside guest memory", seg.paddr, seg.memsz);
        RV_TRY_VOID(with_context(write_segment(seg), "loading kernel segment"));
        RV_TRY_VOID(memory.fill(GuestAddress(seg.paddr + seg.filesz), 0, seg.memsz - seg.filesz));
    }
    return finish_loading(memory, image, info, initrd, cmdline, layout, acpi_rsdp);
}

}  // namespace

Result<BootInfo> load_linux_elf(const GuestMemory& memory, std::span<const uint8_t> bzimage,
                                const ElfKernel& elf, const SegmentWriter& write_segment,
                                std::optional<std::span<const uint8_t>> initrd,
                                std::string_view cmdline, const MemoryLayout& layout,
                                std::optional<GuestAddress> acpi_rsdp) {
    BzImage image = RV_TRY(parse_bzimage(bzimage));
    return load_elf_with(memory, image, elf, write_segment, initrd, cmdline, layout, acpi_rsdp);
}

bool is_elf(std::span<const uint8_t> kernel) {
    static constexpr uint8_t kMagic[] = {0x7F, 'E', 'L', 'F'};
    return kernel.size() >= 4 && std::equal(std::begin(kMagic), std::end(kMagic), kernel.begin());
}

// What a bzImage of boot protocol 2.15 would say about this kernel: loaded
// high at its link address, not relocated, 64-bit entry, 2 KiB command lines
// (x86's COMMAND_LINE_SIZE), an initrd anywhere below 2 GiB.
BzImage vmlinux_setup_header(const ElfKernel& elf) {
    BzImage image;
    image.version = 0x020F;
    image.setup_sects = 4;
    image.loadflags = kLoadedHigh;
    image.xloadflags = kXlfKernel64;
    image.pref_address = elf.lowest;
    image.init_size = static_cast<uint32_t>(std::min<uint64_t>(elf.end - elf.lowest, UINT32_MAX));
    image.kernel_alignment = 2u << 20;
    image.relocatable = false;
    image.cmdline_size = 2047;
    image.initrd_addr_max = 0x7FFF'FFFF;
    SetupHeader hdr{};
    hdr.setup_sects = image.setup_sects;
    hdr.boot_flag = kBootFlagMagic;
    hdr.header = kHeaderMagic;
    hdr.version = image.version;
    hdr.loadflags = image.loadflags;
    hdr.code32_start = static_cast<uint32_t>(elf.lowest);
    hdr.initrd_addr_max = image.initrd_addr_max;
    hdr.kernel_alignment = image.kernel_alignment;
    hdr.xloadflags = image.xloadflags;
    hdr.cmdline_size = image.cmdline_size;
    hdr.pref_address = image.pref_address;
    hdr.init_size = image.init_size;
    image.setup_header.resize(sizeof hdr);
    // SAFETY: SetupHeader is a packed trivially copyable wire struct.
    std::memcpy(image.setup_header.data(), &hdr, sizeof hdr);
    return image;
}

Result<BootInfo> load_linux_vmlinux(const GuestMemory& memory, std::span<const uint8_t> vmlinux,
                                    std::optional<std::span<const uint8_t>> initrd,
                                    std::string_view cmdline, const MemoryLayout& layout,
                                    std::optional<GuestAddress> acpi_rsdp) {
    ElfKernel elf = RV_TRY(parse_elf_kernel(vmlinux));
    BzImage image = vmlinux_setup_header(elf);
    auto copy = [&](const ElfSegment& seg) {
        return memory.write(GuestAddress(seg.paddr), vmlinux.subspan(seg.offset, seg.filesz));
    };
    return load_elf_with(memory, image, elf, copy, initrd, cmdline, layout, acpi_rsdp);
}

}  // namespace rv::x86
