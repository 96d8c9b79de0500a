#include "arch/x86_64/bzimage.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "arch/x86_64/boot.h"
#include "base/fd.h"
#include "unit/arch/fake_bzimage.h"

namespace rv::x86 {
namespace {

using test::FakeKernel;

TEST(BzImage, ParsesValidHeader) {
    FakeKernel k;
    auto image = k.build();
    auto parsed = parse_bzimage(image);
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(parsed->version, 0x020F);
    EXPECT_EQ(parsed->setup_sects, 4);
    EXPECT_EQ(parsed->kernel_offset, 5u * 512);
    EXPECT_EQ(parsed->kernel_size, k.kernel_size);
    EXPECT_EQ(parsed->pref_address, 0x1000000u);
    EXPECT_EQ(parsed->init_size, 0x1000000u);
    EXPECT_EQ(parsed->kernel_alignment, 0x200000u);
    EXPECT_TRUE(parsed->relocatable);
    EXPECT_EQ(parsed->cmdline_size, 2047u);
    EXPECT_EQ(parsed->initrd_addr_max, 0x7FFFFFFFu);
    EXPECT_TRUE(parsed->can_load_above_4g());
    ASSERT_EQ(parsed->setup_header.size(), sizeof(SetupHeader));
    EXPECT_TRUE(std::equal(parsed->setup_header.begin(), parsed->setup_header.end(),
                           image.begin() + kSetupHeaderOffset));
}

TEST(BzImage, ZeroSetupSectsMeansFour) {
    FakeKernel k;
    k.setup_sects = 0;
    auto parsed = parse_bzimage(k.build());
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(parsed->setup_sects, 4);
    EXPECT_EQ(parsed->kernel_offset, 5u * 512);
}

TEST(BzImage, ShortHeaderIsCopiedOnlyToItsDeclaredEnd) {
    FakeKernel k;
    k.header_end_jump = 0x66;  // protocol 2.12-style header ending at 0x268
    auto image = k.build();
    image[0x268] = 0xAB;  // would be kernel_info_offset in a longer header
    auto parsed = parse_bzimage(image);
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(parsed->setup_header.size(), 0x268 - kSetupHeaderOffset);
}

void expect_error(const std::vector<uint8_t>& image, const std::string& fragment) {
    auto parsed = parse_bzimage(image);
    ASSERT_FALSE(parsed) << "expected an error containing: " << fragment;
    EXPECT_NE(parsed.error().message().find(fragment), std::string::npos)
        << parsed.error().message();
}

TEST(BzImage, RejectsEmptyAndTinyFiles) {
    expect_error({}, "too small");
    expect_error(std::vector<uint8_t>(600, 0), "too small");
    expect_error(std::vector<uint8_t>(1023, 0xFF), "too small");
}

TEST(BzImage, RejectsGarbage) {
    std::vector<uint8_t> garbage(64 * 1024);
    for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 131 + 17);
    expect_error(garbage, "not a bzImage");
    expect_error(std::vector<uint8_t>(64 * 1024, 0), "boot flag");
}

TEST(BzImage, RejectsBadBootFlag) {
    auto image = FakeKernel{}.build();
    image[0x1FE] = 0x55;
    image[0x1FF] = 0x55;
    expect_error(image, "boot flag");
}

TEST(BzImage, RejectsMissingHdrSMagic) {
    auto image = FakeKernel{}.build();
    image[0x202] = 'X';
    expect_error(image, "HdrS");
}

TEST(BzImage, RejectsOldProtocols) {
    FakeKernel k;
    k.version = 0x0204;
    expect_error(k.build(), "too old");
    k.version = 0x020A;  // 2.10: no xloadflags, so no 64-bit entry
    expect_error(k.build(), "64-bit entry");
}

TEST(BzImage, Rejects32BitOnlyKernel) {
    FakeKernel k;
    k.xloadflags = 0;
    expect_error(k.build(), "32-bit only");
}

TEST(BzImage, RejectsZImageWithoutLoadedHigh) {
    FakeKernel k;
    k.loadflags = 0;
    expect_error(k.build(), "LOADED_HIGH");
}

TEST(BzImage, RejectsTruncatedKernel) {
    FakeKernel k;
    auto image = k.build();
    image.resize(5 * 512 + 0x100);  // cut inside the protected-mode kernel
    expect_error(image, "truncated");
    image.resize(5 * 512);  // nothing after the setup sectors
    expect_error(image, "truncated");
}

TEST(BzImage, RejectsSetupSectorsBeyondFile) {
    FakeKernel k;
    auto image = k.build();
    image[0x1F1] = 200;  // 201 * 512 bytes of setup, far past the 18 KiB file
    expect_error(image, "truncated");
}

TEST(BzImage, RejectsHeaderEndingBeforeItsFields) {
    FakeKernel k;
    k.header_end_jump = 0x20;  // header claims to end at 0x222
    expect_error(k.build(), "truncated");
}

TEST(BzImage, SurvivesEveryTruncationLength) {
    auto image = FakeKernel{}.build();
    // Every prefix is either rejected or parsed; none may crash or read past it.
    for (size_t len = 0; len < image.size(); len += 61) {
        std::vector<uint8_t> prefix(image.begin(), image.begin() + len);
        auto parsed = parse_bzimage(prefix);
        EXPECT_FALSE(parsed) << "prefix of " << len << " bytes parsed";
    }
}

// The guest kernel built by tools/guest, when present: tests/unit/arch/ is
// three levels below the repository root.
std::string guest_kernel_path() {
    if (const char* env = std::getenv("RV_GUEST_KERNEL")) return env;
    std::filesystem::path here(__FILE__);
    return (here.parent_path().parent_path().parent_path().parent_path() / "build/guest/vmlinuz")
        .string();
}

TEST(BzImage, RealGuestKernel) {
    std::string path = guest_kernel_path();
    if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not built";
    auto contents = read_file(path);
    ASSERT_TRUE(contents) << contents.error().message();
    std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(contents->data()),
                                   contents->size());
    auto parsed = parse_bzimage(bytes);
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_GE(parsed->version, 0x020C);
    EXPECT_TRUE(parsed->xloadflags & kXlfKernel64);
    EXPECT_GT(parsed->init_size, parsed->kernel_size);
    EXPECT_GE(parsed->cmdline_size, 255u);

    auto layout = MemoryLayout::for_size(512 * kMiB);
    ASSERT_TRUE(layout);
    auto memory = GuestMemory::create(layout->ram);
    ASSERT_TRUE(memory);
    // The initramfs built next to it, if any, goes in too.
    std::optional<std::string> initrd;
    auto initrd_path = std::filesystem::path(path).parent_path() / "initramfs.cpio.gz";
    if (std::filesystem::exists(initrd_path)) initrd = *read_file(initrd_path.string());
    std::optional<std::span<const uint8_t>> initrd_bytes;
    if (initrd)
        initrd_bytes = std::span(reinterpret_cast<const uint8_t*>(initrd->data()), initrd->size());
    auto info = load_linux(*memory, bytes, initrd_bytes, "console=ttyS0", *layout);
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->entry.value, info->kernel_load.value + 0x200);
    EXPECT_LE(info->kernel_end, info->initrd.value + (initrd ? 0 : ~0ull));
    auto bp = memory->read_obj<BootParams>(info->boot_params);
    ASSERT_TRUE(bp);
    EXPECT_EQ(bp->hdr.version, parsed->version);
    EXPECT_EQ(bp->hdr.init_size, parsed->init_size);
    EXPECT_EQ(bp->hdr.ramdisk_size, initrd ? initrd->size() : 0u);
}

}  // namespace
}  // namespace rv::x86
