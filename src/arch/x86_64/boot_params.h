// Wire structs of the Linux x86 boot protocol (Documentation/arch/x86/boot.rst
// and zero-page.rst): the setup header inside a bzImage and the 4 KiB
// boot_params ("zero page") the loader hands to the kernel in %rsi.
// Only the fields the loader touches are named; the rest is padding that keeps
// every named field at its documented offset (pinned by static_asserts).
#pragma once

#include <cstddef>
#include <cstdint>

namespace rv::x86 {

// Offsets inside the kernel image / boot_params where the setup header lives.
inline constexpr size_t kSetupHeaderOffset = 0x1F1;
inline constexpr uint16_t kBootFlagMagic = 0xAA55;    // at 0x1FE
inline constexpr uint32_t kHeaderMagic = 0x53726448;  // "HdrS" at 0x202

// loadflags
inline constexpr uint8_t kLoadedHigh = 1u << 0;
inline constexpr uint8_t kKeepSegments = 1u << 6;
inline constexpr uint8_t kCanUseHeap = 1u << 7;

// xloadflags
inline constexpr uint16_t kXlfKernel64 = 1u << 0;
inline constexpr uint16_t kXlfCanBeLoadedAbove4G = 1u << 1;

// type_of_loader: 0xFF means "undefined loader", the usual value for VMMs
// that have no assigned loader id.
inline constexpr uint8_t kLoaderTypeUndefined = 0xFF;

#pragma pack(push, 1)

struct SetupHeader {
    uint8_t setup_sects;
    uint16_t root_flags;
    uint32_t syssize;
    uint16_t ram_size;
    uint16_t vid_mode;
    uint16_t root_dev;
    uint16_t boot_flag;
    uint16_t jump;
    uint32_t header;
    uint16_t version;
    uint32_t realmode_swtch;
    uint16_t start_sys_seg;
    uint16_t kernel_version;
    uint8_t type_of_loader;
    uint8_t loadflags;
    uint16_t setup_move_size;
    uint32_t code32_start;
    uint32_t ramdisk_image;
    uint32_t ramdisk_size;
    uint32_t bootsect_kludge;
    uint16_t heap_end_ptr;
    uint8_t ext_loader_ver;
    uint8_t ext_loader_type;
    uint32_t cmd_line_ptr;
    uint32_t initrd_addr_max;
    uint32_t kernel_alignment;
    uint8_t relocatable_kernel;
    uint8_t min_alignment;
    uint16_t xloadflags;
    uint32_t cmdline_size;
    uint32_t hardware_subarch;
    uint64_t hardware_subarch_data;
    uint32_t payload_offset;
    uint32_t payload_length;
    uint64_t setup_data;
    uint64_t pref_address;
    uint32_t init_size;
    uint32_t handover_offset;
    uint32_t kernel_info_offset;
};
// The header runs from 0x1F1 to 0x26C in protocol 2.15.
static_assert(sizeof(SetupHeader) == 0x26C - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, boot_flag) == 0x1FE - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, header) == 0x202 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, version) == 0x206 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, loadflags) == 0x211 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, cmd_line_ptr) == 0x228 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, xloadflags) == 0x236 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, pref_address) == 0x258 - kSetupHeaderOffset);
static_assert(offsetof(SetupHeader, init_size) == 0x260 - kSetupHeaderOffset);

struct E820Entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};
static_assert(sizeof(E820Entry) == 20);

inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;
inline constexpr size_t kE820MaxEntries = 128;

struct BootParams {
    uint8_t pad_0x000[0x070];
    uint64_t acpi_rsdp_addr;  // 0x070, protocol 2.14+
    uint8_t pad_0x078[0x0C0 - 0x078];
    uint32_t ext_ramdisk_image;  // 0x0C0: bits 63..32 of ramdisk_image
    uint32_t ext_ramdisk_size;   // 0x0C4
    uint32_t ext_cmd_line_ptr;   // 0x0C8
    uint8_t pad_0x0cc[0x1E8 - 0x0CC];
    uint8_t e820_entries;  // 0x1E8
    uint8_t pad_0x1e9[kSetupHeaderOffset - 0x1E9];
    SetupHeader hdr;  // 0x1F1
    uint8_t pad_0x26c[0x2D0 - 0x26C];
    E820Entry e820_table[kE820MaxEntries];  // 0x2D0
    uint8_t pad_0xcd0[0x1000 - 0xCD0];
};
static_assert(sizeof(BootParams) == 4096);
static_assert(offsetof(BootParams, acpi_rsdp_addr) == 0x070);
static_assert(offsetof(BootParams, ext_ramdisk_image) == 0x0C0);
static_assert(offsetof(BootParams, ext_ramdisk_size) == 0x0C4);
static_assert(offsetof(BootParams, ext_cmd_line_ptr) == 0x0C8);
static_assert(offsetof(BootParams, e820_entries) == 0x1E8);
static_assert(offsetof(BootParams, hdr) == 0x1F1);
static_assert(offsetof(BootParams, e820_table) == 0x2D0);

#pragma pack(pop)

}  // namespace rv::x86
