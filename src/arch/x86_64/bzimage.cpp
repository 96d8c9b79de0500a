#include "arch/x86_64/bzimage.h"

#include <algorithm>
#include <cstring>

namespace rv::x86 {

namespace {

constexpr uint16_t kMinVersion = 0x0206;    // cmdline_size exists from 2.06
constexpr uint16_t kMin64Version = 0x020C;  // xloadflags / 64-bit entry from 2.12
constexpr size_t kHeaderEnd = kSetupHeaderOffset + sizeof(SetupHeader);
// initrd_addr_max default for kernels that leave it zero (boot.rst).
constexpr uint32_t kDefaultInitrdAddrMax = 0x37FFFFFF;

uint32_t major(uint16_t v) {
    return v >> 8;
}
uint32_t minor(uint16_t v) {
    return v & 0xFF;
}

}  // namespace

Result<BzImage> parse_bzimage(std::span<const uint8_t> image) {
    if (image.size() < std::max(kMinBzImageSize, kHeaderEnd))
        return make_error("not a bzImage: file is {} bytes, too small for a setup header",
                          image.size());

    // The header may be shorter than our struct in older protocols; the byte at
    // 0x201 (the jump offset) says where it ends. Bytes past that end are not
    // header fields, so they are read as zero.
    size_t declared_end = 0x202 + size_t{image[0x201]};
    size_t hdr_end = std::min(declared_end, kHeaderEnd);
    SetupHeader hdr{};
    // SAFETY: SetupHeader is a packed, trivially copyable wire struct and the
    // source range [0x1F1, hdr_end) is inside image (checked above).
    std::memcpy(&hdr, image.data() + kSetupHeaderOffset, hdr_end - kSetupHeaderOffset);

    if (hdr.boot_flag != kBootFlagMagic)
        return make_error("not a bzImage: boot flag is {:#06x}, expected 0xaa55", hdr.boot_flag);
    if (hdr.header != kHeaderMagic)
        return make_error("not a bzImage: no \"HdrS\" magic at 0x202 (found {:#010x})", hdr.header);
    if (hdr.version < kMinVersion)
        return make_error("bzImage boot protocol {}.{:02} is too old (need 2.12+)",
                          major(hdr.version), minor(hdr.version));
    if (hdr.version < kMin64Version)
        return make_error("bzImage boot protocol {}.{:02} has no 64-bit entry point (need 2.12+)",
                          major(hdr.version), minor(hdr.version));
    if (declared_end < kSetupHeaderOffset + offsetof(SetupHeader, hardware_subarch))
        return make_error("bzImage setup header is truncated (ends at {:#x})", declared_end);
    if (!(hdr.xloadflags & kXlfKernel64))
        return make_error("bzImage is a 32-bit only kernel (XLF_KERNEL_64 not set)");
    if (!(hdr.loadflags & kLoadedHigh))
        return make_error("bzImage is not loadable high (LOADED_HIGH not set: zImage?)");

    BzImage out;
    out.version = hdr.version;
    out.setup_sects = hdr.setup_sects == 0 ? 4 : hdr.setup_sects;
    out.loadflags = hdr.loadflags;
    out.xloadflags = hdr.xloadflags;
    out.kernel_offset = (uint64_t{out.setup_sects} + 1) * 512;
    if (out.kernel_offset >= image.size())
        return make_error("bzImage is truncated: {} setup sectors but file is {} bytes",
                          out.setup_sects, image.size());
    out.kernel_size = image.size() - out.kernel_offset;
    // The 64-bit entry point lies 0x200 into the protected-mode kernel.
    if (out.kernel_size <= kStartup64Offset)
        return make_error("bzImage is truncated: protected-mode kernel is only {} bytes",
                          out.kernel_size);
    // syssize counts 16-byte paragraphs of the protected-mode kernel.
    if (uint64_t{hdr.syssize} * 16 > out.kernel_size)
        return make_error("bzImage is truncated: header says {} bytes of kernel, file has {}",
                          uint64_t{hdr.syssize} * 16, out.kernel_size);

    out.pref_address = hdr.pref_address;
    out.init_size = hdr.init_size;
    out.kernel_alignment = hdr.kernel_alignment;
    out.relocatable = hdr.relocatable_kernel != 0;
    out.cmdline_size = hdr.cmdline_size;
    out.initrd_addr_max = hdr.initrd_addr_max ? hdr.initrd_addr_max : kDefaultInitrdAddrMax;
    out.setup_header.assign(image.begin() + kSetupHeaderOffset, image.begin() + hdr_end);
    return out;
}

}  // namespace rv::x86
