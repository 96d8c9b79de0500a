// Queue::create: the one-time layout validation done when the driver enables
// a queue (size, alignment, rings inside RAM, rings not overlapping).
#include <gtest/gtest.h>

#include "devices/virtio/queue.h"
#include "support/fake_driver_queue.h"

namespace rv::virtio {
namespace {

using test::FakeDriverQueue;
using test::make_test_memory;

constexpr uint64_t kMem = 64 * 1024;

Result<Queue> create(const GuestMemory& m, QueueConfig c, uint16_t max = 256) {
    return Queue::create(m, c, max, false, false);
}

TEST(QueueCreate, AcceptsPackedLayoutOfEverySize) {
    auto m = make_test_memory(kMem);
    for (uint32_t size = 1; size <= 1024; size *= 2) {
        auto c = FakeDriverQueue::packed_layout(static_cast<uint16_t>(size), GuestAddress(0x1000));
        auto q = create(m, c, 1024);
        ASSERT_TRUE(q) << size << ": " << q.error().message();
        EXPECT_EQ(q->size(), size);
        EXPECT_EQ(q->next_avail(), 0);
        EXPECT_EQ(q->next_used(), 0);
    }
}

TEST(QueueCreate, RejectsBadSizes) {
    auto m = make_test_memory(kMem);
    auto layout = [](uint16_t size) {
        return FakeDriverQueue::packed_layout(size, GuestAddress(0x1000));
    };
    EXPECT_FALSE(create(m, layout(0)));
    EXPECT_FALSE(create(m, layout(3)));
    EXPECT_FALSE(create(m, layout(48)));
    EXPECT_FALSE(create(m, layout(255)));
    // Larger than the device's maximum.
    EXPECT_FALSE(create(m, layout(512), 256));
    EXPECT_TRUE(create(m, layout(256), 256));
    // A max_size of zero accepts nothing.
    EXPECT_FALSE(create(m, layout(1), 0));
    // A device maximum above the spec's 32768 is clamped to it: 32768 fits
    // in a big enough memory, 65535 is not a power of two anyway.
    auto big = make_test_memory(2 << 20);
    auto c = FakeDriverQueue::packed_layout(32768, GuestAddress(0x1000));
    EXPECT_TRUE(Queue::create(big, c, 65535, false, false));
}

TEST(QueueCreate, RejectsMisalignedRings) {
    auto m = make_test_memory(kMem);
    QueueConfig good{16, GuestAddress(0x1000), GuestAddress(0x2000), GuestAddress(0x3000)};
    ASSERT_TRUE(create(m, good));
    for (uint64_t off : {1, 2, 4, 8}) {
        auto c = good;
        c.desc.value += off;
        EXPECT_FALSE(create(m, c)) << "desc +" << off;
    }
    auto c = good;
    c.avail.value += 1;
    EXPECT_FALSE(create(m, c));
    c.avail.value += 1;  // +2 is fine for the avail ring
    EXPECT_TRUE(create(m, c));
    for (uint64_t off : {1, 2, 3}) {
        c = good;
        c.used.value += off;
        EXPECT_FALSE(create(m, c)) << "used +" << off;
    }
}

TEST(QueueCreate, RejectsRingsOutsideMemory) {
    auto m = make_test_memory(kMem);
    QueueConfig good{16, GuestAddress(0x1000), GuestAddress(0x2000), GuestAddress(0x3000)};
    auto c = good;
    c.desc = GuestAddress(kMem);  // starts just past RAM
    EXPECT_FALSE(create(m, c));
    c = good;
    c.desc = GuestAddress(kMem - 16 * 16 + 16);  // last descriptor hangs over the end
    EXPECT_FALSE(create(m, c));
    c.desc = GuestAddress(kMem - 16 * 16);  // exactly fits
    EXPECT_TRUE(create(m, c));
    // The trailing used_event field (2 bytes after the ring) counts.
    c = good;
    c.avail = GuestAddress(kMem - (4 + 2 * 16));
    EXPECT_FALSE(create(m, c));
    c.avail = GuestAddress(kMem - (6 + 2 * 16));
    EXPECT_TRUE(create(m, c));
    // Likewise avail_event after the used ring.
    c = good;
    c.used = GuestAddress(kMem - (4 + 8 * 16));
    EXPECT_FALSE(create(m, c));
    c.used = GuestAddress(kMem - (8 + 8 * 16));  // 4-aligned, fits with 2 spare
    EXPECT_TRUE(create(m, c));
}

TEST(QueueCreate, RejectsRingsWrappingTheAddressSpace) {
    auto m = make_test_memory(kMem);
    QueueConfig c{16, GuestAddress(0xffff'ffff'ffff'fff0), GuestAddress(0x2000),
                  GuestAddress(0x3000)};
    EXPECT_FALSE(create(m, c));
    c = {16, GuestAddress(0x1000), GuestAddress(0xffff'ffff'ffff'fffe), GuestAddress(0x3000)};
    EXPECT_FALSE(create(m, c));
    c = {16, GuestAddress(0x1000), GuestAddress(0x2000), GuestAddress(0xffff'ffff'ffff'fffc)};
    EXPECT_FALSE(create(m, c));
}

TEST(QueueCreate, RejectsOverlappingRings) {
    auto m = make_test_memory(kMem);
    // Used ring on top of the descriptor table.
    EXPECT_FALSE(create(m, {16, GuestAddress(0x1000), GuestAddress(0x2000), GuestAddress(0x1000)}));
    // Used ring starting inside the last descriptor.
    EXPECT_FALSE(create(m, {16, GuestAddress(0x1000), GuestAddress(0x2000), GuestAddress(0x10fc)}));
    // Used ring right after the table is fine.
    EXPECT_TRUE(create(m, {16, GuestAddress(0x1000), GuestAddress(0x2000), GuestAddress(0x1100)}));
    // Avail ring inside the descriptor table.
    EXPECT_FALSE(create(m, {16, GuestAddress(0x1000), GuestAddress(0x1008), GuestAddress(0x3000)}));
    // Avail's trailing used_event field touching the used ring.
    EXPECT_FALSE(create(
        m, {16, GuestAddress(0x1000), GuestAddress(0x2000), GuestAddress(0x2000 + 4 + 2 * 16)}));
    EXPECT_TRUE(create(m, {16, GuestAddress(0x1000), GuestAddress(0x2000),
                           GuestAddress(0x2000 + 6 + 2 * 16 + 2)}));
    // Descriptor table starting inside the used ring.
    EXPECT_FALSE(create(m, {16, GuestAddress(0x3010), GuestAddress(0x2000), GuestAddress(0x3000)}));
}

}  // namespace
}  // namespace rv::virtio
