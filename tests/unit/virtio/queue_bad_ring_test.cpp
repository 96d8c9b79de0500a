// Malicious or broken rings: every case must be an error value (never a
// crash or hang), and the queue must stay usable afterwards. A bad chain is
// consumed (next_avail moves past it) so a device that logs and carries on
// cannot spin on it; a bad avail index consumes nothing.
#include <gtest/gtest.h>

#include "devices/virtio/queue.h"
#include "support/fake_driver_queue.h"

namespace rv::virtio {
namespace {

using test::FakeDriverQueue;
using test::make_test_memory;

class QueueBadRing : public ::testing::Test {
  protected:
    static constexpr uint16_t kSize = 8;
    GuestMemory m_mem = make_test_memory(256 * 1024);
    FakeDriverQueue m_driver{m_mem, kSize};
    Queue m_queue = *m_driver.create_queue(256, false, true);

    // Pops, expects an error mentioning `what`, and checks that the queue
    // still serves a good chain published afterwards.
    void expect_bad_chain(std::string_view what) {
        auto r = m_queue.pop(m_mem);
        ASSERT_FALSE(r) << "expected an error about '" << what << "'";
        EXPECT_NE(r.error().message().find(what), std::string::npos) << r.error().message();
        EXPECT_EQ(m_queue.next_avail(), 1) << "the bad chain is consumed";
        expect_still_usable();
    }

    void expect_still_usable() {
        m_driver.set_avail_idx(m_queue.next_avail());  // forget anything else queued
        uint16_t head = m_driver.add_chain({{"ok", false}});
        auto r = m_queue.pop(m_mem);
        ASSERT_TRUE(r) << r.error().message();
        ASSERT_TRUE(*r);
        EXPECT_EQ((*r)->head, head);
        EXPECT_TRUE(m_queue.add_used(m_mem, head, 0));
    }

    // Publishes descriptor 0 = d (and nothing else).
    void publish_desc0(VirtqDesc d) {
        m_driver.set_desc(0, d);
        m_driver.publish_raw(0);
    }
    uint64_t buf(uint64_t offset = 0) const { return 0x10000 + offset; }
};

TEST_F(QueueBadRing, DescriptorLoop) {
    m_driver.set_desc(0, {buf(), 4, kDescFNext, 1});
    m_driver.set_desc(1, {buf(), 4, kDescFNext, 0});
    m_driver.publish_raw(0);
    expect_bad_chain("longer than queue size");
}

TEST_F(QueueBadRing, SelfLoop) {
    publish_desc0({buf(), 4, kDescFNext, 0});
    expect_bad_chain("longer than queue size");
}

TEST_F(QueueBadRing, ChainLongerThanSizeWithoutRevisiting) {
    // Every descriptor used once is fine (size 8)...
    for (uint16_t i = 0; i < kSize; ++i)
        m_driver.set_desc(i, {buf(), 1, static_cast<uint16_t>(i + 1 < kSize ? kDescFNext : 0),
                              static_cast<uint16_t>(i + 1)});
    m_driver.publish_raw(0);
    auto ok = m_queue.pop(m_mem);
    ASSERT_TRUE(ok && *ok);
    EXPECT_EQ((*ok)->buffers.size(), kSize);
    // ...one more (the last pointing back to the start) is not.
    m_driver.set_desc(kSize - 1, {buf(), 1, kDescFNext, 0});
    m_driver.publish_raw(0);
    auto r = m_queue.pop(m_mem);
    EXPECT_FALSE(r);
    EXPECT_EQ(m_queue.next_avail(), 2);
}

TEST_F(QueueBadRing, HeadIndexOutOfRange) {
    m_driver.publish_raw(kSize);
    expect_bad_chain("head 8 >= size");
}

TEST_F(QueueBadRing, HeadIndexMax) {
    m_driver.publish_raw(0xffff);
    expect_bad_chain(">= size");
}

TEST_F(QueueBadRing, NextIndexOutOfRange) {
    publish_desc0({buf(), 4, kDescFNext, kSize});
    expect_bad_chain("next index 8");
}

TEST_F(QueueBadRing, AvailIndexJumpsTooFar) {
    m_driver.set_avail_idx(kSize + 1);
    auto r = m_queue.pop(m_mem);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("avail index moved by 9"), std::string::npos);
    EXPECT_EQ(m_queue.next_avail(), 0);
    // Backwards (as seen from next_avail) is a huge jump too.
    m_driver.set_avail_idx(0xffff);
    EXPECT_FALSE(m_queue.pop(m_mem));
    // Exactly `size` pending is legal.
    m_driver.set_avail_idx(0);
    for (int i = 0; i < kSize; ++i) m_driver.add_chain({{1, true}});
    EXPECT_EQ(m_driver.avail_idx(), kSize);
    for (int i = 0; i < kSize; ++i) EXPECT_TRUE(m_queue.pop(m_mem).value().has_value());
}

TEST_F(QueueBadRing, BufferOutsideRam) {
    publish_desc0({256 * 1024 - 2, 4, 0, 0});  // straddles the end
    expect_bad_chain("outside guest memory");
}

TEST_F(QueueBadRing, BufferFarOutsideRam) {
    publish_desc0({1ull << 40, 1, kDescFWrite, 0});
    expect_bad_chain("outside guest memory");
}

TEST_F(QueueBadRing, BufferAddressPlusLenOverflows) {
    publish_desc0({0xffff'ffff'ffff'fff0, 0x20, 0, 0});
    expect_bad_chain("outside guest memory");
}

TEST_F(QueueBadRing, ZeroLengthBufferOutsideRamIsHarmless) {
    // Zero bytes are never accessed, so any address is accepted (and the
    // buffer dropped): documented choice in queue.cpp.
    publish_desc0({0xffff'ffff'ffff'ffff, 0, 0, 0});
    auto r = m_queue.pop(m_mem);
    ASSERT_TRUE(r && *r);
    EXPECT_TRUE((*r)->buffers.empty());
}

TEST_F(QueueBadRing, ReadableAfterWritable) {
    m_driver.set_desc(0, {buf(), 4, kDescFWrite | kDescFNext, 1});
    m_driver.set_desc(1, {buf(16), 4, 0, 0});
    m_driver.publish_raw(0);
    expect_bad_chain("readable buffer after a writable");
}

TEST_F(QueueBadRing, IndirectNotNegotiated) {
    auto q = *m_driver.create_queue(256, false, /*indirect=*/false);
    uint16_t head = m_driver.add_indirect_chain({{"x", false}});
    auto r = q.pop(m_mem);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("not negotiated"), std::string::npos);
    EXPECT_EQ(q.next_avail(), 1);
    (void)head;
}

TEST_F(QueueBadRing, NestedIndirect) {
    GuestAddress table = m_driver.alloc_data(32, 16);
    GuestAddress inner = m_driver.alloc_data(16, 16);
    ASSERT_TRUE(m_mem.write_obj(table, VirtqDesc{buf(), 4, kDescFNext, 1}));
    ASSERT_TRUE(m_mem.write_obj(GuestAddress(table.value + 16),
                                VirtqDesc{inner.value, 16, kDescFIndirect, 0}));
    ASSERT_TRUE(m_mem.write_obj(inner, VirtqDesc{buf(), 4, 0, 0}));
    publish_desc0({table.value, 32, kDescFIndirect, 0});
    expect_bad_chain("nested indirect");
}

TEST_F(QueueBadRing, IndirectWithNext) {
    GuestAddress table = m_driver.alloc_data(16, 16);
    ASSERT_TRUE(m_mem.write_obj(table, VirtqDesc{buf(), 4, 0, 0}));
    m_driver.set_desc(1, {buf(), 4, 0, 0});
    publish_desc0({table.value, 16, kDescFIndirect | kDescFNext, 1});
    expect_bad_chain("indirect descriptor with NEXT");
}

TEST_F(QueueBadRing, IndirectLengthZero) {
    publish_desc0({buf(), 0, kDescFIndirect, 0});
    expect_bad_chain("not a non-zero multiple of 16");
}

TEST_F(QueueBadRing, IndirectLengthNotMultipleOf16) {
    publish_desc0({buf(), 24, kDescFIndirect, 0});
    expect_bad_chain("not a non-zero multiple of 16");
}

TEST_F(QueueBadRing, IndirectTableTooLarge) {
    // 32769 entries: more than any queue could hold.
    publish_desc0({buf(), 16u * (kMaxQueueSize + 1), kDescFIndirect, 0});
    expect_bad_chain("exceeds");
}

TEST_F(QueueBadRing, IndirectTableOutsideRam) {
    publish_desc0({256 * 1024 - 16, 32, kDescFIndirect, 0});
    expect_bad_chain("indirect table");
}

TEST_F(QueueBadRing, IndirectTableAddressOverflows) {
    publish_desc0({0xffff'ffff'ffff'fff0, 32, kDescFIndirect, 0});
    expect_bad_chain("indirect table");
}

TEST_F(QueueBadRing, IndirectLoop) {
    GuestAddress table = m_driver.alloc_data(32, 16);
    ASSERT_TRUE(m_mem.write_obj(table, VirtqDesc{buf(), 4, kDescFNext, 1}));
    ASSERT_TRUE(
        m_mem.write_obj(GuestAddress(table.value + 16), VirtqDesc{buf(), 4, kDescFNext, 0}));
    publish_desc0({table.value, 32, kDescFIndirect, 0});
    expect_bad_chain("longer than its table");
}

TEST_F(QueueBadRing, IndirectNextOutOfTable) {
    GuestAddress table = m_driver.alloc_data(32, 16);
    ASSERT_TRUE(m_mem.write_obj(table, VirtqDesc{buf(), 4, kDescFNext, 2}));
    publish_desc0({table.value, 32, kDescFIndirect, 0});
    expect_bad_chain("indirect next index 2");
}

TEST_F(QueueBadRing, IndirectReadableAfterWritable) {
    m_driver.add_indirect_chain({{4, true}, {"late", false}});
    expect_bad_chain("readable buffer after a writable");
}

TEST_F(QueueBadRing, ReadableInTableAfterWritableDirect) {
    // The order rule spans the direct part and the indirect table.
    GuestAddress table = m_driver.alloc_data(16, 16);
    ASSERT_TRUE(m_mem.write_obj(table, VirtqDesc{buf(), 4, 0, 0}));
    m_driver.set_desc(0, {buf(), 4, kDescFWrite | kDescFNext, 1});
    m_driver.set_desc(1, {table.value, 16, kDescFIndirect, 0});
    m_driver.publish_raw(0);
    expect_bad_chain("readable buffer after a writable");
}

TEST_F(QueueBadRing, AddUsedRejectsHeadOutOfRange) {
    EXPECT_FALSE(m_queue.add_used(m_mem, kSize, 0));
    EXPECT_FALSE(m_queue.add_used(m_mem, 0xffff, 0));
    EXPECT_EQ(m_queue.next_used(), 0);
    EXPECT_EQ(m_driver.used_idx(), 0);
}

TEST_F(QueueBadRing, GuestRewritesDescriptorsAfterPop) {
    // What pop returned is a copy: later guest writes cannot change it.
    uint16_t head = m_driver.add_chain({{"abcd", false}});
    auto r = m_queue.pop(m_mem);
    ASSERT_TRUE(r && *r);
    m_driver.set_desc(head, {0xffff'ffff'0000'0000, 0xffff'ffff, kDescFNext, 0});
    EXPECT_EQ((*r)->buffers[0].len, 4u);
    EXPECT_EQ((*r)->buffers[0].addr, m_driver.buffer_addr(head, 0));
}

}  // namespace
}  // namespace rv::virtio
