#include "arch/x86_64/boot.h"

#include <gtest/gtest.h>

#include <string>

#include "unit/arch/fake_bzimage.h"

namespace rv::x86 {
namespace {

using test::FakeKernel;

struct Guest {
    MemoryLayout layout;
    GuestMemory memory;
};

Guest make_guest(uint64_t size) {
    auto layout = MemoryLayout::for_size(size);
    EXPECT_TRUE(layout);
    auto memory = GuestMemory::create(layout->ram);
    EXPECT_TRUE(memory);
    return {std::move(*layout), std::move(*memory)};
}

std::string read_cstring(const GuestMemory& mem, uint64_t addr, size_t max) {
    std::string s(max, '\0');
    EXPECT_TRUE(mem.read(GuestAddress(addr), std::span(reinterpret_cast<uint8_t*>(s.data()), max)));
    return s.substr(0, s.find('\0'));
}

TEST(LoadLinux, FillsBootParams) {
    Guest g = make_guest(256 * kMiB);
    FakeKernel k;
    auto image = k.build();
    auto info = load_linux(g.memory, image, std::nullopt, "console=ttyS0 quiet", g.layout,
                           GuestAddress(0xE0000));
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->kernel_load.value, 0x100000u);
    EXPECT_EQ(info->entry.value, 0x100200u);
    EXPECT_EQ(info->boot_params.value, kBootParamsAddr);
    EXPECT_EQ(info->page_table_root.value, kPml4Addr);
    EXPECT_EQ(info->initrd_size, 0u);

    auto bp = g.memory.read_obj<BootParams>(GuestAddress(kBootParamsAddr));
    ASSERT_TRUE(bp);
    // Copied from the kernel's header...
    EXPECT_EQ(bp->hdr.boot_flag, kBootFlagMagic);
    EXPECT_EQ(bp->hdr.header, kHeaderMagic);
    EXPECT_EQ(bp->hdr.version, 0x020F);
    EXPECT_EQ(bp->hdr.setup_sects, 4);
    EXPECT_EQ(bp->hdr.init_size, k.init_size);
    // ...then the loader's fields.
    EXPECT_EQ(bp->hdr.type_of_loader, 0xFF);
    EXPECT_EQ(bp->hdr.loadflags, kLoadedHigh | kCanUseHeap);
    EXPECT_EQ(bp->hdr.heap_end_ptr, 0xFE00);
    EXPECT_EQ(bp->hdr.cmd_line_ptr, kCmdlineAddr);
    EXPECT_EQ(bp->ext_cmd_line_ptr, 0u);
    EXPECT_EQ(bp->hdr.ramdisk_image, 0u);
    EXPECT_EQ(bp->hdr.ramdisk_size, 0u);
    EXPECT_EQ(bp->acpi_rsdp_addr, 0xE0000u);
    ASSERT_EQ(bp->e820_entries, 3);
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(bp->e820_table[i].addr, g.layout.e820[i].addr);
        EXPECT_EQ(bp->e820_table[i].size, g.layout.e820[i].size);
        EXPECT_EQ(bp->e820_table[i].type, g.layout.e820[i].type);
    }
    EXPECT_EQ(bp->e820_table[3].size, 0u);

    EXPECT_EQ(read_cstring(g.memory, kCmdlineAddr, 64), "console=ttyS0 quiet");

    std::vector<uint8_t> loaded(k.kernel_size);
    ASSERT_TRUE(g.memory.read(GuestAddress(0x100000), loaded));
    for (size_t i = 0; i < loaded.size(); ++i)
        ASSERT_EQ(loaded[i], FakeKernel::payload_byte(i)) << "kernel byte " << i;

    // Page tables and GDT were written too.
    auto pml4e = g.memory.read_obj<uint64_t>(GuestAddress(kPml4Addr));
    ASSERT_TRUE(pml4e);
    EXPECT_EQ(*pml4e, kPdptAddr | 3);
    auto code = g.memory.read_obj<uint64_t>(GuestAddress(kGdtAddr + 0x10));
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0x00AF9B000000FFFFull);
}

TEST(LoadLinux, NoRsdpLeavesFieldZero) {
    Guest g = make_guest(64 * kMiB);
    auto image = FakeKernel{}.build();
    ASSERT_TRUE(load_linux(g.memory, image, std::nullopt, "", g.layout));
    auto bp = g.memory.read_obj<BootParams>(GuestAddress(kBootParamsAddr));
    ASSERT_TRUE(bp);
    EXPECT_EQ(bp->acpi_rsdp_addr, 0u);
    EXPECT_EQ(read_cstring(g.memory, kCmdlineAddr, 8), "");
}

TEST(LoadLinux, CmdlineLengthLimitComesFromHeader) {
    Guest g = make_guest(64 * kMiB);
    FakeKernel k;
    k.cmdline_size = 100;
    auto image = k.build();
    std::string exact(100, 'a');
    ASSERT_TRUE(load_linux(g.memory, image, std::nullopt, exact, g.layout));
    EXPECT_EQ(read_cstring(g.memory, kCmdlineAddr, 200), exact);

    auto too_long = load_linux(g.memory, image, std::nullopt, std::string(101, 'a'), g.layout);
    ASSERT_FALSE(too_long);
    EXPECT_NE(too_long.error().message().find("at most 100"), std::string::npos)
        << too_long.error().message();
}

TEST(LoadLinux, CmdlineCappedByItsGuestArea) {
    Guest g = make_guest(64 * kMiB);
    FakeKernel k;
    k.cmdline_size = 0x100000;  // kernel claims 1 MiB; the area at 0x20000 holds 64 KiB
    auto image = k.build();
    EXPECT_TRUE(load_linux(g.memory, image, std::nullopt, std::string(0xFFFF, 'x'), g.layout));
    EXPECT_FALSE(load_linux(g.memory, image, std::nullopt, std::string(0x10000, 'x'), g.layout));
}

TEST(LoadLinux, RejectsCmdlineWithNul) {
    Guest g = make_guest(64 * kMiB);
    auto image = FakeKernel{}.build();
    using namespace std::literals;
    EXPECT_FALSE(load_linux(g.memory, image, std::nullopt, "a\0b"sv, g.layout));
}

TEST(LoadLinux, PlacesInitrdHighAndPageAligned) {
    Guest g = make_guest(256 * kMiB);
    auto image = FakeKernel{}.build();
    std::vector<uint8_t> initrd(10000);
    for (size_t i = 0; i < initrd.size(); ++i) initrd[i] = static_cast<uint8_t>(i ^ 0x5A);
    auto info = load_linux(g.memory, image, std::span<const uint8_t>(initrd), "", g.layout);
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->initrd.value % kPageSize, 0u);
    EXPECT_LE(info->initrd.value + initrd.size(), 256 * kMiB);
    EXPECT_GT(info->initrd.value + initrd.size() + kPageSize, 256 * kMiB);  // as high as possible
    EXPECT_GE(info->initrd.value, info->kernel_end);

    std::vector<uint8_t> back(initrd.size());
    ASSERT_TRUE(g.memory.read(info->initrd, back));
    EXPECT_EQ(back, initrd);
    auto bp = g.memory.read_obj<BootParams>(GuestAddress(kBootParamsAddr));
    ASSERT_TRUE(bp);
    EXPECT_EQ(bp->hdr.ramdisk_image, info->initrd.value);
    EXPECT_EQ(bp->hdr.ramdisk_size, initrd.size());
    EXPECT_EQ(bp->ext_ramdisk_image, 0u);
    EXPECT_EQ(bp->ext_ramdisk_size, 0u);
}

TEST(LoadLinux, InitrdRespectsInitrdAddrMax) {
    Guest g = make_guest(256 * kMiB);
    FakeKernel k;
    k.xloadflags = kXlfKernel64;    // may not go above 4 GiB, so initrd_addr_max applies
    k.initrd_addr_max = 0x5FFFFFF;  // 96 MiB - 1
    auto image = k.build();
    std::vector<uint8_t> initrd(3 * kPageSize + 1, 0xEE);
    auto info = load_linux(g.memory, image, std::span<const uint8_t>(initrd), "", g.layout);
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->initrd.value, 0x6000000 - 4 * kPageSize);
}

TEST(LoadLinux, InitrdStaysBelowPciHoleWithLargeMemory) {
    Guest g = make_guest(8 * kGiB);
    auto image = FakeKernel{}.build();
    std::vector<uint8_t> initrd(kMiB, 1);
    auto info = load_linux(g.memory, image, std::span<const uint8_t>(initrd), "", g.layout);
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->initrd.value, kPciHoleStart - kMiB);
}

TEST(LoadLinux, InitrdTooLargeIsAnError) {
    Guest g = make_guest(64 * kMiB);
    auto image = FakeKernel{}.build();  // kernel needs up to 32 MiB
    std::vector<uint8_t> initrd(40 * kMiB);
    auto info = load_linux(g.memory, image, std::span<const uint8_t>(initrd), "", g.layout);
    ASSERT_FALSE(info);
    EXPECT_NE(info.error().message().find("initrd"), std::string::npos);
}

TEST(PlaceInitrd, BoundaryCases) {
    auto layout = MemoryLayout::for_size(64 * kMiB);
    ASSERT_TRUE(layout);
    auto parsed = parse_bzimage(FakeKernel{}.build());
    ASSERT_TRUE(parsed);
    uint64_t kernel_end = 32 * kMiB;
    // Exactly the free space fits; one byte more does not.
    auto fits = place_initrd(*parsed, *layout, kernel_end, 32 * kMiB);
    ASSERT_TRUE(fits);
    EXPECT_EQ(fits->value, kernel_end);
    EXPECT_FALSE(place_initrd(*parsed, *layout, kernel_end, 32 * kMiB + 1));
    EXPECT_FALSE(place_initrd(*parsed, *layout, kernel_end, ~0ull));
}

TEST(LoadLinux, KernelThatDoesNotFitIsAnError) {
    Guest g = make_guest(16 * kMiB);
    auto image = FakeKernel{}.build();  // init_size 16 MiB from 16 MiB
    auto info = load_linux(g.memory, image, std::nullopt, "", g.layout);
    ASSERT_FALSE(info);
    EXPECT_NE(info.error().message().find("kernel needs memory"), std::string::npos);
}

TEST(LoadLinux, NonRelocatableKernelLoadsAtPrefAddress) {
    Guest g = make_guest(128 * kMiB);
    FakeKernel k;
    k.relocatable = 0;
    auto image = k.build();
    auto info = load_linux(g.memory, image, std::nullopt, "", g.layout);
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->kernel_load.value, 0x1000000u);
    EXPECT_EQ(info->entry.value, 0x1000200u);
    auto first = g.memory.read_obj<uint8_t>(GuestAddress(0x1000000));
    ASSERT_TRUE(first);
    EXPECT_EQ(*first, FakeKernel::payload_byte(0));
}

TEST(LoadLinux, RejectsCorruptKernel) {
    Guest g = make_guest(64 * kMiB);
    std::vector<uint8_t> junk(4096, 0x90);
    auto info = load_linux(g.memory, junk, std::nullopt, "", g.layout);
    ASSERT_FALSE(info);
    EXPECT_NE(info.error().message().find("not a bzImage"), std::string::npos);
}

}  // namespace
}  // namespace rv::x86
