// Parser for the setup header of a Linux x86 bzImage (boot protocol 2.12+,
// 64-bit entry). The kernel file is untrusted input: every field is range
// checked and a malformed image yields an Error, never a crash.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "arch/x86_64/boot_params.h"
#include "base/error.h"

namespace rv::x86 {

struct BzImage {
    uint16_t version{0};     // boot protocol, e.g. 0x020F for 2.15
    uint8_t setup_sects{0};  // effective (0 in the file means 4)
    uint8_t loadflags{0};
    uint16_t xloadflags{0};
    // The protected-mode kernel is image[kernel_offset, kernel_offset + kernel_size).
    uint64_t kernel_offset{0};
    uint64_t kernel_size{0};
    uint64_t pref_address{0};
    uint32_t init_size{0};  // memory the kernel needs from its load address while booting
    uint32_t kernel_alignment{0};
    bool relocatable{false};
    uint32_t cmdline_size{0};     // max command line length, excluding the NUL
    uint32_t initrd_addr_max{0};  // highest address the initrd's last byte may occupy
    // Raw setup header bytes from 0x1F1 to the end the image declares (at
    // most sizeof(SetupHeader)), to be copied into boot_params.hdr.
    std::vector<uint8_t> setup_header;

    bool can_load_above_4g() const { return xloadflags & kXlfCanBeLoadedAbove4G; }
};

// The smallest image accepted: boot sector + one setup sector.
inline constexpr size_t kMinBzImageSize = 1024;
// 64-bit entry point (startup_64) is this far into the protected-mode kernel.
inline constexpr uint64_t kStartup64Offset = 0x200;

Result<BzImage> parse_bzimage(std::span<const uint8_t> image);

}  // namespace rv::x86
