// Queue::pop / add_used on well-formed rings: single and multi-buffer
// chains, indirect tables, 16-bit index wrap-around, extreme queue sizes.
#include <gtest/gtest.h>

#include "devices/virtio/queue.h"
#include "support/fake_driver_queue.h"

namespace rv::virtio {
namespace {

using test::FakeDriverQueue;
using test::make_test_memory;
using test::UsedElem;

DescriptorChain pop_one(Queue& q, const GuestMemory& m) {
    auto r = q.pop(m);
    EXPECT_TRUE(r) << r.error().message();
    if (!r || !*r) {
        ADD_FAILURE() << "no chain available";
        return {};
    }
    return std::move(**r);
}

std::string read_all(const GuestMemory& m, const DescriptorChain& c) {
    ChainReader reader(m, c);
    std::string s(reader.remaining(), '\0');
    auto n = reader.read(std::span(reinterpret_cast<uint8_t*>(s.data()), s.size()));
    EXPECT_TRUE(n);
    return s;
}

class QueuePop : public ::testing::Test {
  protected:
    GuestMemory m_mem = make_test_memory();
    FakeDriverQueue m_driver{m_mem, 16};
    Queue m_queue = *m_driver.create_queue(256, false, true);
};

TEST_F(QueuePop, EmptyRingGivesNothing) {
    auto r = m_queue.pop(m_mem);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->has_value());
    EXPECT_EQ(m_queue.next_avail(), 0);
}

TEST_F(QueuePop, SingleReadableBuffer) {
    uint16_t head = m_driver.add_chain({{"hello", false}});
    auto chain = pop_one(m_queue, m_mem);
    EXPECT_EQ(chain.head, head);
    ASSERT_EQ(chain.buffers.size(), 1u);
    EXPECT_FALSE(chain.buffers[0].device_writable);
    EXPECT_EQ(chain.buffers[0].len, 5u);
    EXPECT_EQ(chain.buffers[0].addr, m_driver.buffer_addr(head, 0));
    EXPECT_EQ(chain.readable_bytes(), 5u);
    EXPECT_EQ(chain.writable_bytes(), 0u);
    EXPECT_EQ(read_all(m_mem, chain), "hello");
    EXPECT_EQ(m_queue.next_avail(), 1);
    // Nothing more.
    EXPECT_FALSE(m_queue.pop(m_mem)->has_value());
}

TEST_F(QueuePop, MultiBufferChainKeepsOrderAndDirections) {
    uint16_t head = m_driver.add_chain({{"hdr", false}, {"body", false}, {64, true}, {1, true}});
    auto chain = pop_one(m_queue, m_mem);
    EXPECT_EQ(chain.head, head);
    ASSERT_EQ(chain.buffers.size(), 4u);
    EXPECT_EQ(chain.readable_bytes(), 7u);
    EXPECT_EQ(chain.writable_bytes(), 65u);
    EXPECT_FALSE(chain.buffers[1].device_writable);
    EXPECT_TRUE(chain.buffers[2].device_writable);
    EXPECT_EQ(chain.buffers[2].len, 64u);
    EXPECT_EQ(read_all(m_mem, chain), "hdrbody");
}

TEST_F(QueuePop, AddUsedPublishesElementAndIndex) {
    uint16_t a = m_driver.add_chain({{8, true}});
    uint16_t b = m_driver.add_chain({{8, true}});
    auto ca = pop_one(m_queue, m_mem);
    auto cb = pop_one(m_queue, m_mem);
    // Completing out of order is allowed.
    ASSERT_TRUE(m_queue.add_used(m_mem, cb.head, 3));
    EXPECT_EQ(m_driver.used_idx(), 1);
    EXPECT_EQ(m_driver.used_elem(0), (UsedElem{b, 3}));
    ASSERT_TRUE(m_queue.add_used(m_mem, ca.head, 8));
    EXPECT_EQ(m_driver.used_idx(), 2);
    EXPECT_EQ(m_queue.next_used(), 2);
    EXPECT_EQ(m_driver.pop_used(), (UsedElem{b, 3}));
    EXPECT_EQ(m_driver.pop_used(), (UsedElem{a, 8}));
    EXPECT_FALSE(m_driver.pop_used());
    EXPECT_EQ(m_driver.free_descriptors(), 16u);
}

TEST_F(QueuePop, IndirectChain) {
    uint16_t head = m_driver.add_indirect_chain({{"in", false}, {"direct", false}, {32, true}});
    auto chain = pop_one(m_queue, m_mem);
    EXPECT_EQ(chain.head, head);
    ASSERT_EQ(chain.buffers.size(), 3u);
    EXPECT_EQ(read_all(m_mem, chain), "indirect");
    EXPECT_EQ(chain.writable_bytes(), 32u);
    EXPECT_EQ(chain.buffers[2].addr, m_driver.buffer_addr(head, 2));
}

TEST_F(QueuePop, DirectDescriptorsThenIndirectTable) {
    // 2.7.5.3.2: zero or more direct descriptors followed by one indirect.
    uint16_t table_head = m_driver.build_indirect_chain({{"tail", false}, {4, true}});
    uint16_t first = m_driver.build_chain({{"head-", false}});
    auto d = m_driver.desc(first);
    d.flags |= kDescFNext;
    d.next = table_head;
    m_driver.set_desc(first, d);
    m_driver.publish(first);
    auto chain = pop_one(m_queue, m_mem);
    EXPECT_EQ(chain.head, first);
    ASSERT_EQ(chain.buffers.size(), 3u);
    EXPECT_EQ(read_all(m_mem, chain), "head-tail");
    EXPECT_TRUE(chain.buffers[2].device_writable);
}

TEST_F(QueuePop, IndirectDescriptorWriteFlagIsIgnored) {
    uint16_t head = m_driver.build_indirect_chain({{"x", false}});
    auto d = m_driver.desc(head);
    d.flags |= kDescFWrite;  // "The device MUST ignore the write-only flag" here
    m_driver.set_desc(head, d);
    m_driver.publish(head);
    auto chain = pop_one(m_queue, m_mem);
    ASSERT_EQ(chain.buffers.size(), 1u);
    EXPECT_FALSE(chain.buffers[0].device_writable);
}

TEST_F(QueuePop, ZeroLengthBuffersAreValidatedThenDropped) {
    uint16_t head = m_driver.add_chain({{"a", false}, {0, false}, {4, true}, {0, true}});
    auto chain = pop_one(m_queue, m_mem);
    EXPECT_EQ(chain.head, head);
    ASSERT_EQ(chain.buffers.size(), 2u);
    EXPECT_EQ(chain.readable_bytes(), 1u);
    EXPECT_EQ(chain.writable_bytes(), 4u);
}

TEST_F(QueuePop, UndoPopGivesTheSameChainAgain) {
    uint16_t head = m_driver.add_chain({{"again", false}});
    auto first = pop_one(m_queue, m_mem);
    m_queue.undo_pop();
    EXPECT_EQ(m_queue.next_avail(), 0);
    auto second = pop_one(m_queue, m_mem);
    EXPECT_EQ(second.head, head);
    EXPECT_EQ(read_all(m_mem, second), "again");
}

TEST_F(QueuePop, FullRingOfChains) {
    std::vector<uint16_t> heads;
    for (int i = 0; i < 16; ++i) heads.push_back(m_driver.add_chain({{1, true}}));
    for (int i = 0; i < 16; ++i) EXPECT_EQ(pop_one(m_queue, m_mem).head, heads[i]);
    EXPECT_FALSE(m_queue.pop(m_mem)->has_value());
}

TEST(QueueIndices, WrapAroundAt65535) {
    // Run a 4-entry queue through more than 2^16 chains: avail and used
    // indices wrap from 65535 to 0 and everything keeps working.
    auto mem = make_test_memory();
    FakeDriverQueue driver(mem, 4);
    auto q = *driver.create_queue(4);
    const uint32_t total = 65536 + 10;
    for (uint32_t i = 0; i < total; ++i) {
        uint8_t tag = static_cast<uint8_t>(i);
        uint16_t head = driver.add_chain({{std::vector<uint8_t>{tag}, false}, {2, true}});
        auto r = q.pop(mem);
        ASSERT_TRUE(r && *r) << "at " << i;
        ASSERT_EQ((*r)->head, head);
        ChainReader reader(mem, **r);
        auto byte = reader.read_obj<uint8_t>();
        ASSERT_TRUE(byte);
        ASSERT_EQ(*byte, tag);
        ASSERT_TRUE(q.add_used(mem, head, 1));
        auto used = driver.pop_used();
        ASSERT_TRUE(used) << "at " << i;
        ASSERT_EQ(used->id, head);
    }
    EXPECT_EQ(q.next_avail(), static_cast<uint16_t>(total));
    EXPECT_EQ(q.next_used(), static_cast<uint16_t>(total));
    EXPECT_EQ(driver.used_idx(), 10);
}

TEST(QueueIndices, BatchStraddlingTheWrap) {
    // Several entries published across avail idx 65535 -> 0 in one go.
    auto mem = make_test_memory();
    FakeDriverQueue driver(mem, 8);
    auto q = *driver.create_queue(8);
    for (uint32_t i = 0; i < 65533; ++i) {
        uint16_t h = driver.add_chain({{1, true}});
        ASSERT_TRUE(q.pop(mem));
        ASSERT_TRUE(q.add_used(mem, h, 0));
        ASSERT_TRUE(driver.pop_used());
    }
    ASSERT_EQ(q.next_avail(), 65533);
    std::vector<uint16_t> heads;
    for (int i = 0; i < 6; ++i) heads.push_back(driver.add_chain({{"x", false}}));
    EXPECT_EQ(driver.avail_idx(), 3);
    for (int i = 0; i < 6; ++i) {
        auto chain = pop_one(q, mem);
        EXPECT_EQ(chain.head, heads[i]);
        ASSERT_TRUE(q.add_used(mem, chain.head, 0));
    }
    EXPECT_FALSE(q.pop(mem)->has_value());
    EXPECT_EQ(driver.used_idx(), 3);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(driver.pop_used()->id, heads[i]);
}

TEST(QueueSizes, SizeOne) {
    auto mem = make_test_memory();
    FakeDriverQueue driver(mem, 1);
    auto q = *driver.create_queue(1);
    for (int round = 0; round < 3; ++round) {
        uint16_t head = driver.add_chain({{"one", false}});
        EXPECT_EQ(head, 0);
        auto chain = pop_one(q, mem);
        EXPECT_EQ(read_all(mem, chain), "one");
        // A single-descriptor queue can hold a one-element chain only.
        ASSERT_TRUE(q.add_used(mem, 0, 0));
        EXPECT_TRUE(driver.pop_used());
    }
    EXPECT_FALSE(q.add_used(mem, 1, 0));
}

TEST(QueueSizes, Size1024WithLongChain) {
    auto mem = make_test_memory(4 << 20);
    FakeDriverQueue driver(mem, 1024);
    auto q = *driver.create_queue(1024);
    // A chain using every descriptor is the longest legal one.
    std::vector<test::BufferSpec> bufs;
    for (int i = 0; i < 1024; ++i) bufs.emplace_back(std::string_view("ab"), i >= 512);
    uint16_t head = driver.add_chain(bufs);
    auto chain = pop_one(q, mem);
    EXPECT_EQ(chain.head, head);
    EXPECT_EQ(chain.buffers.size(), 1024u);
    EXPECT_EQ(chain.readable_bytes(), 1024u);
    EXPECT_EQ(chain.writable_bytes(), 1024u);
    ASSERT_TRUE(q.add_used(mem, head, 0));
    EXPECT_TRUE(driver.pop_used());
    // Then many small ones fill the ring.
    for (int i = 0; i < 1024; ++i) driver.add_chain({{4, true}});
    for (int i = 0; i < 1024; ++i) ASSERT_TRUE(q.pop(mem).value().has_value());
    EXPECT_FALSE(q.pop(mem)->has_value());
}

}  // namespace
}  // namespace rv::virtio
