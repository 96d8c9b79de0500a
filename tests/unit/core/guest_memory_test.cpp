#include "memory/guest_memory.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace rv {
namespace {

GuestMemory two_regions() {
    // [0, 64K) and [64K, 128K) are adjacent; [1M, 1M+64K) is apart.
    std::array specs{GuestMemory::RegionSpec{GuestAddress(0), 0x10000},
                     GuestMemory::RegionSpec{GuestAddress(0x10000), 0x10000},
                     GuestMemory::RegionSpec{GuestAddress(0x100000), 0x10000}};
    auto m = GuestMemory::create(specs);
    EXPECT_TRUE(m.has_value());
    return std::move(*m);
}

TEST(GuestMemory, RejectsBadRegions) {
    std::array unaligned{GuestMemory::RegionSpec{GuestAddress(0x100), 0x1000}};
    EXPECT_FALSE(GuestMemory::create(unaligned));
    std::array overlap{GuestMemory::RegionSpec{GuestAddress(0), 0x2000},
                       GuestMemory::RegionSpec{GuestAddress(0x1000), 0x1000}};
    EXPECT_FALSE(GuestMemory::create(overlap));
    std::array wrap{GuestMemory::RegionSpec{GuestAddress(~0ull - 0xfff), 0x2000}};
    EXPECT_FALSE(GuestMemory::create(wrap));
    std::array empty{GuestMemory::RegionSpec{GuestAddress(0), 0}};
    EXPECT_FALSE(GuestMemory::create(empty));
}

TEST(GuestMemory, ReadWriteRoundTrip) {
    auto m = two_regions();
    ASSERT_TRUE(m.write_obj<uint32_t>(GuestAddress(0x100), 0xdeadbeef));
    auto v = m.read_obj<uint32_t>(GuestAddress(0x100));
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, 0xdeadbeefu);
    EXPECT_EQ(m.total_size(), 0x30000u);
}

TEST(GuestMemory, AccessSpansAdjacentRegions) {
    auto m = two_regions();
    std::vector<uint8_t> data(32);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i + 1);
    ASSERT_TRUE(m.write(GuestAddress(0x10000 - 16), data));
    std::vector<uint8_t> back(32);
    ASSERT_TRUE(m.read(GuestAddress(0x10000 - 16), back));
    EXPECT_EQ(back, data);
    // Each half landed in its own region's mapping.
    EXPECT_EQ(m.regions()[0].host[0xffff], 16);
    EXPECT_EQ(m.regions()[1].host[0], 17);
}

TEST(GuestMemory, RejectsAccessIntoHole) {
    auto m = two_regions();
    std::vector<uint8_t> buf(32, 0xaa);
    // Ends past the second region into the hole before 1 MiB.
    EXPECT_FALSE(m.write(GuestAddress(0x20000 - 16), buf));
    // Nothing was written before the failure was detected.
    EXPECT_EQ(m.regions()[1].host[0xffff], 0);
    EXPECT_FALSE(m.read(GuestAddress(0x50000), buf));
    EXPECT_FALSE(m.check_range(GuestAddress(0x100000 - 1), 2));
    EXPECT_TRUE(m.check_range(GuestAddress(0x100000), 0x10000));
    EXPECT_FALSE(m.check_range(GuestAddress(0x100000), 0x10001));
}

TEST(GuestMemory, RejectsOverflowingAccess) {
    auto m = two_regions();
    std::vector<uint8_t> buf(16);
    EXPECT_FALSE(m.read(GuestAddress(~0ull - 4), buf));
    EXPECT_FALSE(m.check_range(GuestAddress(0x100), ~0ull));
    EXPECT_FALSE(m.fill(GuestAddress(0x8), 0, ~0ull - 2));
    EXPECT_FALSE(m.host_range(GuestAddress(0x100000), ~0ull));
}

TEST(GuestMemory, HostRangeMustStayInOneRegion) {
    auto m = two_regions();
    EXPECT_TRUE(m.host_range(GuestAddress(0x1000), 0x1000));
    EXPECT_FALSE(m.host_range(GuestAddress(0xf000), 0x2000));  // crosses into region 2
    auto p = m.host_range(GuestAddress(0x100010), 4);
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, m.regions()[2].host + 0x10);
}

TEST(GuestMemory, SingleAccessU16) {
    auto m = two_regions();
    ASSERT_TRUE(m.store_u16(GuestAddress(0xfffe), 0xbeef));  // last u16 of region 0
    auto v = m.load_u16(GuestAddress(0xfffe));
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, 0xbeef);
    EXPECT_EQ(*m.read_obj<uint16_t>(GuestAddress(0xfffe)), 0xbeef);
    EXPECT_FALSE(m.load_u16(GuestAddress(0x101)));              // odd address
    EXPECT_FALSE(m.store_u16(GuestAddress(0x101), 1));
    EXPECT_FALSE(m.load_u16(GuestAddress(0x20000)));            // hole
    EXPECT_FALSE(m.store_u16(GuestAddress(0x10fffe + 2), 1));   // past the last region
}

// A driver moving an index across a 256 boundary (0x00ff <-> 0x0100) while
// the device reads it: every value read must be one the driver wrote. A
// byte-wise or byte-then-word copy (glibc's memcpy of 2 bytes) reads 0x01ff
// or 0x0000 here within a few thousand reads.
TEST(GuestMemory, U16LoadsDoNotTearAgainstAConcurrentWriter) {
    auto m = two_regions();
    const GuestAddress idx(0x2002);
    ASSERT_TRUE(m.store_u16(idx, 0x00ff));
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> writes{0};
    std::thread writer([&] {
        uint16_t value = 0x00ff;
        while (!stop.load(std::memory_order_relaxed)) {
            value = value == 0x00ff ? 0x0100 : 0x00ff;
            (void)m.store_u16(idx, value);
            writes.fetch_add(1, std::memory_order_relaxed);
        }
    });
    // Both sides must overlap for a while: on a loaded machine the writer may
    // start late, so count its progress too (bounded by a deadline).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    uint64_t torn = 0;
    uint64_t reads = 0;
    while ((reads < 16'000'000 || writes.load(std::memory_order_relaxed) < 16'000'000) &&
           (reads % 4096 != 0 || std::chrono::steady_clock::now() < deadline)) {
        uint16_t v = m.load_u16(idx).value();
        if (v != 0x00ff && v != 0x0100) ++torn;
        ++reads;
    }
    stop = true;
    writer.join();
    EXPECT_EQ(torn, 0u);
}

TEST(GuestMemory, MoveTransfersOwnership) {
    auto m = two_regions();
    GuestMemory moved = std::move(m);
    EXPECT_EQ(moved.regions().size(), 3u);
    EXPECT_TRUE(m.regions().empty());
    EXPECT_FALSE(m.read_obj<uint8_t>(GuestAddress(0)));
}

}  // namespace
}  // namespace rv
