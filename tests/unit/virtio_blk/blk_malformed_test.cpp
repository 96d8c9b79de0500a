// virtio-blk against bad input: read-only disks, malformed chains, ranges
// past the end, unsupported types, config space. Every case ends with an
// error status or a logged DEVICE_NEEDS_RESET, never a crash.
#include "blk_test_util.h"

namespace rv::test {
namespace {

using namespace virtio::blk;

TEST_F(BlkTest, FeaturesAndConfig) {
    start();
    uint64_t f = m_dev->device_features();
    for (uint64_t bit : {kFSizeMax, kFSegMax, kFBlkSize, kFFlush, kFDiscard, kFWriteZeroes,
                         virtio::kFVersion1, virtio::kFRingIndirectDesc, virtio::kFRingEventIdx})
        EXPECT_TRUE(f & bit) << bit;
    EXPECT_FALSE(f & kFRo);
    EXPECT_EQ(m_dev->device_type(), 2u);
    EXPECT_EQ(m_dev->queue_max_sizes(), std::vector<uint16_t>{256});

    BlkConfig config{};
    m_dev->read_config(0, std::span(reinterpret_cast<uint8_t*>(&config), sizeof(config)));
    EXPECT_EQ(config.capacity, 2048u);
    EXPECT_EQ(config.blk_size, 512u);
    EXPECT_EQ(config.seg_max, 254u);
    EXPECT_GT(config.max_discard_seg, 0u);
    EXPECT_GT(config.max_write_zeroes_sectors, 0u);

    // Partial reads at an offset, out-of-range reads give zeros, writes ignored.
    uint8_t cap_hi[4] = {1, 1, 1, 1};
    m_dev->read_config(1, cap_hi);
    EXPECT_EQ(cap_hi[0], 0x08);  // 2048 = 0x800
    uint8_t past[4] = {1, 1, 1, 1};
    m_dev->read_config(200, past);
    EXPECT_EQ(past[0] | past[1] | past[2] | past[3], 0);
    uint8_t junk[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    m_dev->write_config(0, junk);
    EXPECT_EQ(m_dev->config().capacity, 2048u);
}

TEST_F(BlkTest, ReadOnlyDiskRefusesWrites) {
    m_image.write(0, std::vector<uint8_t>(512, 0x33));
    start({.read_only = true, .engine = BlockOptions::Engine::Sync});
    EXPECT_TRUE(m_dev->device_features() & kFRo);
    EXPECT_FALSE(m_dev->device_features() & kFDiscard);
    uint16_t w =
        m_driver.add_chain({{blk_header(kTOut, 0), false}, {pattern(512, 1), false}, {1, true}});
    uint16_t z = m_driver.add_chain(
        {{concat(blk_header(kTWriteZeroes, 0), blk_segments({{0, 1, 0}})), false}, {1, true}});
    uint16_t r = m_driver.add_chain({{blk_header(kTIn, 0), false}, {512, true}, {1, true}});
    run();
    EXPECT_EQ(next_status(w), kSIoErr);
    EXPECT_EQ(next_status(z), kSUnsupp);  // not negotiated on a read-only disk
    EXPECT_EQ(next_status(r), kSOk);
    EXPECT_EQ(m_image.read(0, 512), std::vector<uint8_t>(512, 0x33));
    EXPECT_FALSE(m_dev->needs_reset());
}

TEST_F(BlkTest, UnsupportedTypesAndFlags) {
    start({.engine = BlockOptions::Engine::Sync}, kFFlush);
    uint16_t t = m_driver.add_chain({{blk_header(99, 0), false}, {1, true}});
    uint16_t f = m_driver.add_chain({{blk_header(kTFlush, 0), false}, {1, true}});
    uint16_t u = m_driver.add_chain(
        {{concat(blk_header(kTDiscard, 0), blk_segments({{0, 1, kSegmentFlagUnmap}})), false},
         {1, true}});
    uint16_t g = m_driver.add_chain(
        {{concat(blk_header(kTWriteZeroes, 0), blk_segments({{0, 1, 4}})), false}, {1, true}});
    run();
    EXPECT_EQ(next_status(t), kSUnsupp);
    EXPECT_EQ(next_status(f), kSUnsupp);  // FLUSH not negotiated
    EXPECT_EQ(next_status(u), kSUnsupp);
    EXPECT_EQ(next_status(g), kSUnsupp);
    EXPECT_EQ(m_dev->stats().errors, 4u);
}

TEST_F(BlkTest, BadRangesAndLengthsGetIoErr) {
    start();
    std::vector<uint16_t> heads = {
        // sector past capacity; the last sector plus one; overflowing sector
        m_driver.add_chain({{blk_header(kTIn, 2048), false}, {512, true}, {1, true}}),
        m_driver.add_chain({{blk_header(kTOut, 2047), false}, {1024, false}, {1, true}}),
        m_driver.add_chain({{blk_header(kTIn, ~0ull), false}, {512, true}, {1, true}}),
        // data not a multiple of 512
        m_driver.add_chain({{blk_header(kTIn, 0), false}, {100, true}, {1, true}}),
        m_driver.add_chain({{blk_header(kTOut, 0), false}, {513, false}, {1, true}}),
        // header too short
        m_driver.add_chain({{"12345678", false}, {1, true}}),
        // readable data in a read; writable data in a write
        m_driver.add_chain({{blk_header(kTIn, 0), false}, {512, false}, {512, true}, {1, true}}),
        m_driver.add_chain({{blk_header(kTOut, 0), false}, {512, false}, {512, true}, {1, true}}),
        // discard: no segments, partial segment, too many, past the end
        m_driver.add_chain({{blk_header(kTDiscard, 0), false}, {1, true}}),
        m_driver.add_chain(
            {{concat(blk_header(kTDiscard, 0), std::vector<uint8_t>(8)), false}, {1, true}}),
        m_driver.add_chain(
            {{concat(blk_header(kTDiscard, 0), std::vector<uint8_t>(16 * 17)), false}, {1, true}}),
        m_driver.add_chain(
            {{concat(blk_header(kTDiscard, 0), blk_segments({{2040, 9, 0}})), false}, {1, true}}),
    };
    run();
    for (uint16_t head : heads) EXPECT_EQ(next_status(head), kSIoErr) << "head " << head;
    EXPECT_FALSE(m_dev->needs_reset());
    EXPECT_EQ(m_dev->stats().submitted, 0u);  // none reached the backend
}

// A header split across two buffers is legal.
TEST_F(BlkTest, HeaderSplitAcrossBuffers) {
    start();
    auto h = blk_header(kTOut, 2);
    std::vector<uint8_t> h1(h.begin(), h.begin() + 5), h2(h.begin() + 5, h.end());
    uint16_t w =
        m_driver.add_chain({{h1, false}, {h2, false}, {pattern(512, 4), false}, {1, true}});
    run();
    EXPECT_EQ(next_status(w), kSOk);
    EXPECT_EQ(m_image.read(1024, 512), pattern(512, 4));
}

// No writable status byte: nothing can be reported. The chain comes back
// with len 0 and the device asks for a reset; later requests are not taken.
class BlkNoStatus : public BlkTest, public testing::WithParamInterface<int> {};

TEST_P(BlkNoStatus, ReturnsChainEmptyAndNeedsReset) {
    start();
    std::vector<BufferSpec> chain;
    switch (GetParam()) {
        case 0:
            chain = {{blk_header(kTIn, 0), false}};
            break;  // status missing
        case 1:
            chain = {{blk_header(kTOut, 0), false}, {512, false}};
            break;  // status readable
        case 2:
            chain = {{blk_header(kTIn, 0), false}, {0, true}};
            break;  // zero-length status
    }
    uint16_t bad = m_driver.add_chain(chain);
    m_driver.add_chain({{blk_header(kTIn, 0), false}, {512, true}, {1, true}});
    run();
    auto used = m_driver.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, bad);
    EXPECT_EQ(used->len, 0u);
    EXPECT_TRUE(m_dev->needs_reset());
    EXPECT_EQ(m_irq->config, 1);
    EXPECT_EQ(m_dev->stats().malformed, 1u);
    EXPECT_FALSE(m_driver.pop_used());  // the good request after it waits for the reset
    m_dev->reset();
    EXPECT_FALSE(m_dev->needs_reset());
}

INSTANTIATE_TEST_SUITE_P(Cases, BlkNoStatus, testing::Range(0, 3));

// A driver republishing heads it has not got back cannot make the device
// hold more requests than the queue has entries.
TEST_F(BlkTest, RepublishedHeadsAreBounded) {
    start();
    uint16_t head = m_driver.add_chain({{blk_header(kTOut, 0), false}, {512, false}, {1, true}});
    for (int i = 0; i < 63; ++i) m_driver.publish(head);
    m_dev->queue_notify(0);  // 64 outstanding: as many as the queue holds
    EXPECT_FALSE(m_dev->needs_reset());
    EXPECT_EQ(m_dev->stats().submitted, 64u);
    for (int i = 0; i < 5; ++i) m_driver.publish(head);
    m_dev->queue_notify(0);
    EXPECT_TRUE(m_dev->needs_reset());
    EXPECT_EQ(m_dev->stats().submitted, 64u);
    finish();
}

// Queue corruption (a head out of range) is a reset, not a crash.
TEST_F(BlkTest, CorruptRingNeedsReset) {
    start();
    m_driver.publish_raw(5000);
    m_dev->queue_notify(0);
    EXPECT_TRUE(m_dev->needs_reset());
    EXPECT_EQ(m_irq->config, 1);
}

TEST_F(BlkTest, NotifyBeforeActivateOrOtherQueueIsIgnored) {
    auto backend = BlockBackend::open(m_image.path(), {.engine = BlockOptions::Engine::Sync});
    ASSERT_TRUE(backend);
    m_dev = std::make_unique<virtio::VirtioBlk>(std::move(*backend), "s");
    m_dev->queue_notify(0);
    m_dev->reset();
    activate();
    m_driver.add_chain({{blk_header(kTIn, 0), false}, {512, true}, {1, true}});
    m_dev->queue_notify(1);
    EXPECT_EQ(m_driver.used_idx(), 0);
    run();
    EXPECT_EQ(m_driver.used_idx(), 1);
}

}  // namespace
}  // namespace rv::test
