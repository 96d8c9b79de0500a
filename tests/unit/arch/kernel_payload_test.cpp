#include "arch/x86_64/kernel_payload.h"

#include "arch/x86_64/boot.h"
#include "arch/x86_64/layout.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

namespace rv::x86 {
namespace {

// A minimal x86-64 ELF executable with one PT_LOAD segment.
std::vector<uint8_t> make_elf(uint64_t paddr, uint64_t entry, uint64_t filesz, uint64_t memsz) {
    std::vector<uint8_t> f(sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + filesz, 0xcc);
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_entry = entry;
    eh.e_phoff = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    Elf64_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_offset = sizeof eh + sizeof ph;
    ph.p_paddr = paddr;
    ph.p_filesz = filesz;
    ph.p_memsz = memsz;
    std::memcpy(f.data(), &eh, sizeof eh);
    std::memcpy(f.data() + sizeof eh, &ph, sizeof ph);
    return f;
}

TEST(ElfKernel, ParsesSegmentsAndEntry) {
    auto f = make_elf(0x1000000, 0x1000000, 0x100, 0x2000);
    auto k = parse_elf_kernel(f);
    ASSERT_TRUE(k) << k.error().message();
    EXPECT_EQ(k->entry, 0x1000000u);
    ASSERT_EQ(k->segments.size(), 1u);
    EXPECT_EQ(k->lowest, 0x1000000u);
    EXPECT_EQ(k->end, 0x1002000u);
}

TEST(ElfKernel, RejectsMalformedFiles) {
    EXPECT_FALSE(parse_elf_kernel(std::vector<uint8_t>(10)));
    auto f = make_elf(0x1000000, 0x1000000, 0x100, 0x2000);
    auto bad_magic = f;
    bad_magic[0] = 0;
    EXPECT_FALSE(parse_elf_kernel(bad_magic));
    // Entry outside every segment (e.g. a virtual address).
    EXPECT_FALSE(parse_elf_kernel(make_elf(0x1000000, 0xffffffff81000000, 0x100, 0x2000)));
    // filesz > memsz.
    EXPECT_FALSE(parse_elf_kernel(make_elf(0x1000000, 0x1000000, 0x100, 0x10)));
    // Segment data beyond the end of the file.
    auto truncated = f;
    truncated.resize(truncated.size() - 1);
    EXPECT_FALSE(parse_elf_kernel(truncated));
    // paddr + memsz wraps.
    EXPECT_FALSE(parse_elf_kernel(make_elf(~0ull - 0x10, ~0ull - 0x10, 0x10, 0x100)));
}

TEST(KernelPayload, DecompressesTheGuestKernel) {
    const char* path = std::getenv("RV_GUEST_KERNEL");
    std::string p = path ? path : "build/guest/vmlinuz";
    std::ifstream in(p, std::ios::binary);
    if (!in) GTEST_SKIP() << p << " not built (tools/guest/build.sh)";
    std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), {});
    auto image = parse_bzimage(file);
    ASSERT_TRUE(image);
    auto payload = find_payload(*image, file);
    ASSERT_TRUE(payload) << payload.error().message();
    ASSERT_NE(payload->compression, Compression::Unknown);
    auto elf = decompress(*payload);
    ASSERT_TRUE(elf) << elf.error().message();
    auto k = parse_elf_kernel(*elf);
    ASSERT_TRUE(k) << k.error().message();
    EXPECT_GE(k->lowest, 0x100000u);
    // A corrupted payload is an error, not a crash.
    std::vector<uint8_t> bad(payload->bytes.begin(), payload->bytes.end());
    for (size_t i = 64; i < bad.size(); i += 4096) bad[i] ^= 0x5a;
    EXPECT_FALSE(decompress(Payload{bad, payload->compression}));
    // A bound on the output size is enforced.
    EXPECT_FALSE(decompress(*payload, 1 << 20));
}

TEST(KernelPayload, RejectsPayloadOutsideTheFile) {
    std::vector<uint8_t> junk(100, 0);
    EXPECT_FALSE(decompress(Payload{junk, Compression::Unknown}));
    EXPECT_FALSE(decompress(Payload{junk, Compression::Xz}));
    EXPECT_FALSE(decompress(Payload{junk, Compression::Zstd}));
    EXPECT_FALSE(decompress(Payload{junk, Compression::Gzip}));
}

}  // namespace
}  // namespace rv::x86

namespace rv::x86 {
namespace {

// PUT /boot-source may name a plain vmlinux: it boots at its ELF entry with a
// zero page whose setup header ringvisor makes up.
TEST(Vmlinux, BootsAtItsEntryWithAMadeUpSetupHeader) {
    auto file = make_elf(0x1000000, 0x1000000, 0x100, 0x3000);
    ASSERT_TRUE(is_elf(file));
    auto layout = MemoryLayout::for_size(64 * kMiB);
    ASSERT_TRUE(layout);
    auto memory = GuestMemory::create(layout->ram);
    ASSERT_TRUE(memory);
    const std::string initrd(4096, 'i');
    auto initrd_bytes = std::span(reinterpret_cast<const uint8_t*>(initrd.data()), initrd.size());
    auto boot = load_linux_vmlinux(*memory, file, initrd_bytes, "console=ttyS0", *layout);
    ASSERT_TRUE(boot) << boot.error().message();
    EXPECT_EQ(boot->entry.value, 0x1000000u);
    EXPECT_EQ(boot->kernel_load.value, 0x1000000u);
    EXPECT_GE(boot->initrd.value, 0x1003000u) << "the initrd is above the kernel's memory";
    EXPECT_LE(boot->initrd.value + initrd.size() - 1, 0x7FFF'FFFFu);
    // The segment's bytes are in place and its BSS is zero.
    std::array<uint8_t, 2> b{};
    ASSERT_TRUE(memory->read(GuestAddress(0x1000000), b));
    EXPECT_EQ(b[0], 0xcc);
    ASSERT_TRUE(memory->read(GuestAddress(0x1000100), b));
    EXPECT_EQ(b[0], 0);
    // The zero page: "HdrS", protocol 2.15, loaded high, the command line and initrd.
    auto read = memory->read_obj<BootParams>(boot->boot_params);
    ASSERT_TRUE(read);
    const BootParams& bp = *read;
    EXPECT_EQ(bp.hdr.header, kHeaderMagic);
    EXPECT_EQ(bp.hdr.boot_flag, kBootFlagMagic);
    EXPECT_EQ(bp.hdr.version, 0x020F);
    EXPECT_TRUE(bp.hdr.loadflags & kLoadedHigh);
    EXPECT_EQ(bp.hdr.cmd_line_ptr, boot->cmdline.value);
    EXPECT_EQ(bp.hdr.ramdisk_image, boot->initrd.value);
    EXPECT_EQ(bp.hdr.ramdisk_size, initrd.size());
    EXPECT_EQ(bp.hdr.init_size, 0x3000u);
}

TEST(Vmlinux, RefusesATruncatedFile) {
    auto file = make_elf(0x1000000, 0x1000000, 0x100, 0x3000);
    file.resize(file.size() - 0x80);  // the segment's bytes run past the end
    auto layout = MemoryLayout::for_size(64 * kMiB);
    auto memory = GuestMemory::create(layout->ram);
    EXPECT_FALSE(load_linux_vmlinux(*memory, file, std::nullopt, "", *layout));
    EXPECT_FALSE(is_elf(std::vector<uint8_t>{'M', 'Z'}));
}

}  // namespace
}  // namespace rv::x86
