// The compressed kernel inside a bzImage, and the ELF vmlinux it holds.
// Booting the decompressed ELF directly at its 64-bit entry skips the
// guest-side decompressor — seconds per boot when ring 0 is slow (nested or
// emulated virtualization). ringvisor decompresses once on the host and
// caches the result (vmm/kernel_cache).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "arch/x86_64/bzimage.h"
#include "base/error.h"

namespace rv::x86 {

enum class Compression { Gzip, Xz, Zstd, Unknown };
std::string_view compression_name(Compression c);

// The payload's bytes (setup header payload_offset/length, protocol 2.08+)
// and its format, from its magic number.
struct Payload {
    std::span<const uint8_t> bytes;
    Compression compression{Compression::Unknown};
};
Result<Payload> find_payload(const BzImage& image, std::span<const uint8_t> file);

// Decompresses gzip, xz (with the x86 BCJ filter) or zstd. max_output
// bounds the result (a hostile image cannot make us allocate without limit).
Result<std::vector<uint8_t>> decompress(const Payload& payload, uint64_t max_output = 1ull << 30);

// A 64-bit x86 ELF executable kernel (vmlinux): PT_LOAD segments at their
// physical addresses and the physical entry point (startup_64).
struct ElfSegment {
    uint64_t paddr{0};
    uint64_t offset{0};  // in the file
    uint64_t filesz{0};
    uint64_t memsz{0};
};
struct ElfKernel {
    uint64_t entry{0};
    std::vector<ElfSegment> segments;
    uint64_t lowest{0};  // lowest paddr
    uint64_t end{0};     // highest paddr + memsz
};
// `head` holds at least the ELF and program headers (the first 64 KiB
// suffice for a kernel); segment extents are checked against file_size.
Result<ElfKernel> parse_elf_kernel(std::span<const uint8_t> head, uint64_t file_size);
inline Result<ElfKernel> parse_elf_kernel(std::span<const uint8_t> file) {
    return parse_elf_kernel(file, file.size());
}

}  // namespace rv::x86
