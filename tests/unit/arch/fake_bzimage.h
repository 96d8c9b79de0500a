// Builds synthetic bzImages in memory: a boot sector with a setup header at
// 0x1F1 followed by setup sectors and a patterned protected-mode kernel, so
// tests can corrupt any single field and check what the loader copied.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "arch/x86_64/boot_params.h"

namespace rv::x86::test {

struct FakeKernel {
    uint8_t setup_sects{4};
    uint16_t version{0x020F};
    uint8_t loadflags{kLoadedHigh};
    uint16_t xloadflags{kXlfKernel64 | kXlfCanBeLoadedAbove4G};
    uint32_t kernel_size{0x4000};
    uint8_t relocatable{1};
    uint64_t pref_address{0x1000000};  // 16 MiB, LOAD_PHYSICAL_ADDR
    uint32_t init_size{0x1000000};     // 16 MiB
    uint32_t kernel_alignment{0x200000};
    uint32_t cmdline_size{2047};
    uint32_t initrd_addr_max{0x7FFFFFFF};
    uint8_t header_end_jump{0x6A};  // header ends at 0x202 + this = 0x26C

    // Byte i of the protected-mode kernel.
    static uint8_t payload_byte(size_t i) { return static_cast<uint8_t>(i * 7 + 3); }

    std::vector<uint8_t> build() const {
        size_t setup_bytes = (size_t{setup_sects == 0 ? 4u : setup_sects} + 1) * 512;
        std::vector<uint8_t> image(setup_bytes + kernel_size, 0);
        SetupHeader hdr{};
        hdr.setup_sects = setup_sects;
        hdr.syssize = kernel_size / 16;
        hdr.boot_flag = kBootFlagMagic;
        hdr.jump = static_cast<uint16_t>(0xEB | (header_end_jump << 8));
        hdr.header = kHeaderMagic;
        hdr.version = version;
        hdr.loadflags = loadflags;
        hdr.code32_start = 0x100000;
        hdr.initrd_addr_max = initrd_addr_max;
        hdr.kernel_alignment = kernel_alignment;
        hdr.relocatable_kernel = relocatable;
        hdr.min_alignment = 21;
        hdr.xloadflags = xloadflags;
        hdr.cmdline_size = cmdline_size;
        hdr.pref_address = pref_address;
        hdr.init_size = init_size;
        std::memcpy(image.data() + kSetupHeaderOffset, &hdr, sizeof(hdr));
        for (size_t i = 0; i < kernel_size; ++i) image[setup_bytes + i] = payload_byte(i);
        return image;
    }
};

}  // namespace rv::x86::test
