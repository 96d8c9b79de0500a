#include "arch/x86_64/layout.h"

#include <gtest/gtest.h>

namespace rv::x86 {
namespace {

void expect_e820(const E820Entry& e, uint64_t addr, uint64_t size, uint32_t type) {
    EXPECT_EQ(e.addr, addr);
    EXPECT_EQ(e.size, size);
    EXPECT_EQ(e.type, type);
}

void expect_low_entries(const MemoryLayout& l, uint64_t low_end) {
    ASSERT_GE(l.e820.size(), 3u);
    expect_e820(l.e820[0], 0, 0x9FC00, kE820Ram);
    expect_e820(l.e820[1], 0x9FC00, 0x100000 - 0x9FC00, kE820Reserved);
    expect_e820(l.e820[2], 0x100000, low_end - 0x100000, kE820Ram);
}

TEST(MemoryLayout, Small) {
    auto l = MemoryLayout::for_size(256 * kMiB);
    ASSERT_TRUE(l) << l.error().message();
    ASSERT_EQ(l->ram.size(), 1u);
    EXPECT_EQ(l->ram[0].start.value, 0u);
    EXPECT_EQ(l->ram[0].size, 256 * kMiB);
    EXPECT_EQ(l->low_ram_end, 256 * kMiB);
    EXPECT_EQ(l->high_ram_end, 0u);
    ASSERT_EQ(l->e820.size(), 3u);
    expect_low_entries(*l, 256 * kMiB);
}

TEST(MemoryLayout, ExactlyThreeGiBHasNoHighRegion) {
    auto l = MemoryLayout::for_size(3 * kGiB);
    ASSERT_TRUE(l);
    ASSERT_EQ(l->ram.size(), 1u);
    EXPECT_EQ(l->ram[0].size, 3 * kGiB);
    ASSERT_EQ(l->e820.size(), 3u);
    expect_low_entries(*l, 3 * kGiB);
}

TEST(MemoryLayout, FourGiBSplitsAroundPciHole) {
    auto l = MemoryLayout::for_size(4 * kGiB);
    ASSERT_TRUE(l);
    ASSERT_EQ(l->ram.size(), 2u);
    EXPECT_EQ(l->ram[0].start.value, 0u);
    EXPECT_EQ(l->ram[0].size, 3 * kGiB);
    EXPECT_EQ(l->ram[1].start.value, 4 * kGiB);
    EXPECT_EQ(l->ram[1].size, 1 * kGiB);
    EXPECT_EQ(l->high_ram_end, 5 * kGiB);
    ASSERT_EQ(l->e820.size(), 4u);
    expect_low_entries(*l, 3 * kGiB);
    expect_e820(l->e820[3], 4 * kGiB, 1 * kGiB, kE820Ram);
}

TEST(MemoryLayout, EightGiB) {
    auto l = MemoryLayout::for_size(8 * kGiB);
    ASSERT_TRUE(l);
    ASSERT_EQ(l->ram.size(), 2u);
    EXPECT_EQ(l->ram[1].size, 5 * kGiB);
    EXPECT_EQ(l->high_ram_end, 9 * kGiB);
    ASSERT_EQ(l->e820.size(), 4u);
    expect_e820(l->e820[3], 4 * kGiB, 5 * kGiB, kE820Ram);
    // Total RAM in the map equals what was asked for, less the reserved BIOS area.
    uint64_t ram = 0;
    for (const auto& e : l->e820)
        if (e.type == kE820Ram) ram += e.size;
    EXPECT_EQ(ram, 8 * kGiB - (0x100000 - 0x9FC00));
}

TEST(MemoryLayout, NoE820EntryTouchesThePciHole) {
    auto l = MemoryLayout::for_size(8 * kGiB);
    ASSERT_TRUE(l);
    for (const auto& e : l->e820) {
        bool below = e.addr + e.size <= kPciHoleStart;
        bool above = e.addr >= k4GiB;
        EXPECT_TRUE(below || above) << std::hex << e.addr;
    }
}

TEST(MemoryLayout, RegionsAreAcceptedByGuestMemory) {
    auto l = MemoryLayout::for_size(4 * kGiB + 64 * kMiB);
    ASSERT_TRUE(l);
    auto mem = GuestMemory::create(l->ram);
    ASSERT_TRUE(mem) << mem.error().message();
    EXPECT_EQ(mem->total_size(), 4 * kGiB + 64 * kMiB);
    EXPECT_TRUE(mem->check_range(GuestAddress(k4GiB), 64 * kMiB));
    EXPECT_FALSE(mem->check_range(GuestAddress(kPciHoleStart), 1));
}

TEST(MemoryLayout, RejectsBadSizes) {
    EXPECT_FALSE(MemoryLayout::for_size(0));
    EXPECT_FALSE(MemoryLayout::for_size(1 * kMiB));
    EXPECT_FALSE(MemoryLayout::for_size(256 * kMiB + 100));
    EXPECT_FALSE(MemoryLayout::for_size(~0ull & ~0xFFFull));
}

}  // namespace
}  // namespace rv::x86
