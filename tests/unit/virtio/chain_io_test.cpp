// ChainReader / ChainWriter: sequential copies that cross buffer boundaries,
// skip/advance, scatter lists for vectored I/O, and the byte-count sums.
#include <gtest/gtest.h>

#include <numeric>

#include "devices/virtio/queue.h"
#include "support/fake_driver_queue.h"

namespace rv::virtio {
namespace {

using test::FakeDriverQueue;
using test::make_test_memory;

class ChainIo : public ::testing::Test {
  protected:
    GuestMemory m_mem = make_test_memory();
    FakeDriverQueue m_driver{m_mem, 16};
    Queue m_queue = *m_driver.create_queue();

    DescriptorChain pop(const std::vector<test::BufferSpec>& bufs, uint16_t* head = nullptr) {
        uint16_t h = m_driver.add_chain(bufs);
        if (head) *head = h;
        auto r = m_queue.pop(m_mem);
        if (!r || !*r) throw std::runtime_error("pop failed");
        return std::move(**r);
    }
};

TEST_F(ChainIo, ReadAcrossBuffers) {
    auto chain = pop({{"ab", false}, {"cdef", false}, {"g", false}, {8, true}});
    ChainReader r(m_mem, chain);
    EXPECT_EQ(r.remaining(), 7u);
    std::array<uint8_t, 3> three{};
    ASSERT_EQ(r.read(three).value(), 3u);
    EXPECT_EQ(std::string(three.begin(), three.end()), "abc");
    EXPECT_EQ(r.remaining(), 4u);
    std::array<uint8_t, 10> rest{};
    ASSERT_EQ(r.read(rest).value(), 4u);  // short: only readable bytes count
    EXPECT_EQ(std::string(rest.begin(), rest.begin() + 4), "defg");
    EXPECT_EQ(r.remaining(), 0u);
    EXPECT_EQ(r.read(rest).value(), 0u);
}

TEST_F(ChainIo, ReadObjAndSkip) {
    struct Header {
        uint32_t type;
        uint32_t reserved;
        uint64_t sector;
    };
    Header h{1, 0, 0x1122334455667788};
    std::vector<uint8_t> bytes(sizeof h);
    std::memcpy(bytes.data(), &h, sizeof h);
    // Split the header across two buffers, then a payload.
    std::vector<uint8_t> first(bytes.begin(), bytes.begin() + 5);
    std::vector<uint8_t> second(bytes.begin() + 5, bytes.end());
    auto chain = pop({{first, false}, {second, false}, {"0123456789", false}});
    ChainReader r(m_mem, chain);
    auto got = r.read_obj<Header>();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->type, 1u);
    EXPECT_EQ(got->sector, 0x1122334455667788u);
    ASSERT_TRUE(r.skip(4));
    EXPECT_EQ(r.remaining(), 6u);
    EXPECT_FALSE(r.skip(7));  // past the end: error, position unchanged
    EXPECT_EQ(r.remaining(), 6u);
    std::array<uint8_t, 2> two{};
    ASSERT_EQ(r.read(two).value(), 2u);
    EXPECT_EQ(two[0], '4');
    // read_obj on a too-short remainder fails.
    EXPECT_FALSE(r.read_obj<uint64_t>());
}

TEST_F(ChainIo, ReaderOnWriteOnlyChainIsEmpty) {
    auto chain = pop({{16, true}});
    ChainReader r(m_mem, chain);
    EXPECT_EQ(r.remaining(), 0u);
    EXPECT_FALSE(r.read_obj<uint8_t>());
}

TEST_F(ChainIo, WriteAcrossBuffers) {
    uint16_t head;
    auto chain = pop({{"req", false}, {3, true}, {2, true}, {4, true}}, &head);
    ChainWriter w(m_mem, chain);
    EXPECT_EQ(w.remaining(), 9u);
    std::string msg = "hello";
    auto n = w.write(std::span(reinterpret_cast<const uint8_t*>(msg.data()), msg.size()));
    ASSERT_EQ(n.value(), 5u);
    EXPECT_EQ(w.written(), 5u);
    EXPECT_EQ(w.remaining(), 4u);
    std::string more = "world!";
    ASSERT_EQ(
        w.write(std::span(reinterpret_cast<const uint8_t*>(more.data()), more.size())).value(), 4u);
    EXPECT_EQ(w.remaining(), 0u);
    EXPECT_EQ(w.written(), 9u);
    EXPECT_EQ(m_driver.writable_string(head), "helloworl");
    EXPECT_EQ(m_driver.buffer_data(head, 0), (std::vector<uint8_t>{'r', 'e', 'q'}));
}

TEST_F(ChainIo, RemainingBuffersAndAdvanceForScatterIo) {
    uint16_t head;
    auto chain = pop({{"r", false}, {4, true}, {6, true}}, &head);
    ChainWriter w(m_mem, chain);
    auto all = w.remaining_buffers();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].addr, m_driver.buffer_addr(head, 1));
    EXPECT_EQ(all[0].len, 4u);
    std::array<uint8_t, 3> abc{'a', 'b', 'c'};
    ASSERT_EQ(w.write(abc).value(), 3u);
    auto rest = w.remaining_buffers();
    ASSERT_EQ(rest.size(), 2u);
    EXPECT_EQ(rest[0].addr.value, m_driver.buffer_addr(head, 1).value + 3);
    EXPECT_EQ(rest[0].len, 1u);
    EXPECT_EQ(rest[1].len, 6u);
    // Simulate a readv that filled 1 + 2 bytes straight into guest memory.
    ASSERT_TRUE(m_mem.write_obj<uint8_t>(rest[0].addr, 'd'));
    ASSERT_TRUE(m_mem.write_obj<uint16_t>(rest[1].addr, 0x6665));  // "ef"
    ASSERT_TRUE(w.advance(3));
    EXPECT_EQ(w.written(), 6u);
    auto tail = w.remaining_buffers();
    ASSERT_EQ(tail.size(), 1u);
    EXPECT_EQ(tail[0].len, 4u);
    EXPECT_FALSE(w.advance(5));  // more than is left
    EXPECT_EQ(w.remaining(), 4u);
    ASSERT_TRUE(w.advance(4));
    EXPECT_TRUE(w.remaining_buffers().empty());
    EXPECT_EQ(m_driver.writable_string(head, 6), "abcdef");
}

TEST_F(ChainIo, ByteCountsAreExact64BitSums) {
    // Lengths are u32; their sums must not be truncated to 32 bits.
    DescriptorChain chain;
    for (int i = 0; i < 8; ++i) chain.buffers.push_back({GuestAddress(0), 0xffff'ffff, i >= 5});
    EXPECT_EQ(chain.readable_bytes(), 5ull * 0xffff'ffff);
    EXPECT_EQ(chain.writable_bytes(), 3ull * 0xffff'ffff);
    DescriptorChain empty;
    EXPECT_EQ(empty.readable_bytes(), 0u);
    EXPECT_EQ(empty.writable_bytes(), 0u);
}

TEST_F(ChainIo, IndirectChainIo) {
    auto q = *m_driver.create_queue(256, false, /*indirect=*/true);
    uint16_t head =
        m_driver.add_indirect_chain({{"xy", false}, {"z", false}, {2, true}, {2, true}});
    auto chain = q.pop(m_mem);
    ASSERT_TRUE(chain && *chain);
    ChainReader reader(m_mem, **chain);
    std::array<uint8_t, 3> in{};
    ASSERT_EQ(reader.read(in).value(), 3u);
    EXPECT_EQ(std::string(in.begin(), in.end()), "xyz");
    ChainWriter writer(m_mem, **chain);
    std::array<uint8_t, 4> out{'1', '2', '3', '4'};
    ASSERT_EQ(writer.write(out).value(), 4u);
    EXPECT_EQ(m_driver.writable_string(head), "1234");
}

}  // namespace
}  // namespace rv::virtio
