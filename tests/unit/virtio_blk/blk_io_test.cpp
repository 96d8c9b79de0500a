// virtio-blk requests that succeed: data round trips (multi-buffer, indirect,
// across memory regions), FLUSH as a barrier, GET_ID, DISCARD/WRITE_ZEROES,
// interrupts per batch, reset with I/O in flight; the per-direction op and
// byte counters the accounting bills.
#include <unistd.h>

#include "blk_test_util.h"
#include "support/device_counters.h"

namespace rv::test {
namespace {

using namespace virtio::blk;

TEST_F(BlkTest, WriteThenReadMultiBuffer) {
    start();
    auto data = pattern(1536, 1);
    std::vector<uint8_t> a(data.begin(), data.begin() + 1000), b(data.begin() + 1000, data.end());
    uint16_t w =
        m_driver.add_chain({{blk_header(kTOut, 4), false}, {a, false}, {b, false}, {1, true}});
    run();
    EXPECT_EQ(next_status(w), kSOk);
    EXPECT_EQ(m_image.read(4 * 512, 1536), data);

    uint16_t r = m_driver.add_chain(
        {{blk_header(kTIn, 4), false}, {512, true}, {24, true}, {1000, true}, {1, true}});
    run();
    auto used = m_driver.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, r);
    EXPECT_EQ(used->len, 1537u);  // data + status
    auto got = m_driver.writable_data(r);
    EXPECT_EQ(got.back(), kSOk);
    got.pop_back();
    EXPECT_EQ(got, data);
    auto s = m_dev->stats();
    EXPECT_EQ(s.requests, 2u);
    EXPECT_EQ(s.read_bytes, 1536u);
    EXPECT_EQ(s.write_bytes, 1536u);
    EXPECT_EQ(s.errors, 0u);
    // The same numbers reach --stats.
    const DeviceCounters c = m_dev->counters();
    EXPECT_EQ(test::counter(c, "requests"), 2u);
    EXPECT_EQ(test::counter(c, "read_bytes"), 1536u);
    EXPECT_EQ(test::counter(c, "write_bytes"), 1536u);
}

// The accounting's op counters (issue 14): one per IN / OUT request that
// completed OK, whatever its size or number of buffers (none included); a request that fails
// (refused at parsing, or by the backend) counts in neither ops nor bytes.
TEST_F(BlkTest, CountsReadsAndWritesThatCompleteOk) {
    start();
    uint16_t w1 = m_driver.add_chain({{blk_header(kTOut, 0), false},
                                      {pattern(1024, 1), false},
                                      {pattern(512, 2), false},
                                      {1, true}});
    uint16_t w2 =
        m_driver.add_chain({{blk_header(kTOut, 8), false}, {pattern(4096, 3), false}, {1, true}});
    uint16_t f = m_driver.add_chain({{blk_header(kTFlush, 0), false}, {1, true}});
    uint16_t r = m_driver.add_chain({{blk_header(kTIn, 8), false}, {2048, true}, {1, true}});
    uint16_t beyond =  // past the 2048-sector image: IOERR at parsing
        m_driver.add_chain({{blk_header(kTIn, 2047), false}, {1024, true}, {1, true}});
    uint16_t empty =  // no data: a write that moves nothing, answered OK at once
        m_driver.add_chain({{blk_header(kTOut, 0), false}, {1, true}});
    run();
    EXPECT_EQ(next_status(beyond), kSIoErr);  // both answered before any I/O completes
    EXPECT_EQ(next_status(empty), kSOk);
    EXPECT_EQ(next_status(w1), kSOk);
    EXPECT_EQ(next_status(w2), kSOk);
    EXPECT_EQ(next_status(f), kSOk);
    EXPECT_EQ(next_status(r), kSOk);

    // The image shrinks under the device: the backend fails these with EIO.
    ASSERT_EQ(::truncate(m_image.path().c_str(), 0), 0);
    uint16_t failed_read =
        m_driver.add_chain({{blk_header(kTIn, 16), false}, {512, true}, {1, true}});
    run();
    EXPECT_EQ(next_status(failed_read), kSIoErr);

    const auto s = m_dev->stats();
    EXPECT_EQ(s.requests, 7u);  // every chain popped
    EXPECT_EQ(s.writes, 3u);
    EXPECT_EQ(s.write_bytes, 1536u + 4096u);
    EXPECT_EQ(s.reads, 1u);
    EXPECT_EQ(s.read_bytes, 2048u);
    EXPECT_EQ(s.flushes, 1u);
    EXPECT_EQ(s.errors, 2u);
    const DeviceCounters c = m_dev->counters();
    EXPECT_EQ(test::counter(c, "reads"), 1u);
    EXPECT_EQ(test::counter(c, "writes"), 3u);
    EXPECT_EQ(test::counter(c, "read_bytes"), 2048u);
    EXPECT_EQ(test::counter(c, "write_bytes"), 5632u);
}

TEST_F(BlkTest, IndirectChainRead) {
    m_image.write(0, pattern(1024, 5));
    start();
    uint16_t r =
        m_driver.add_indirect_chain({{blk_header(kTIn, 0), false}, {1024, true}, {1, true}});
    run();
    EXPECT_EQ(next_status(r), kSOk);
    auto got = m_driver.writable_data(r);
    got.pop_back();
    EXPECT_EQ(got, pattern(1024, 5));
}

TEST_F(BlkTest, UringEngineRoundTrip) {
    start({.engine = BlockOptions::Engine::IoUring});
    uint16_t w =
        m_driver.add_chain({{blk_header(kTOut, 100), false}, {pattern(4096, 8), false}, {1, true}});
    run();
    EXPECT_EQ(next_status(w), kSOk);
    uint16_t r = m_driver.add_chain({{blk_header(kTIn, 100), false}, {4096, true}, {1, true}});
    run();
    EXPECT_EQ(next_status(r), kSOk);
    auto got = m_driver.writable_data(r);
    got.pop_back();
    EXPECT_EQ(got, pattern(4096, 8));
}

// A buffer crossing from one memory region into the next becomes two iovecs.
TEST(BlkRegions, BufferSpanningTwoRegions) {
    GuestMemory::RegionSpec specs[] = {{GuestAddress(0), 2 << 20},
                                       {GuestAddress(2 << 20), 2 << 20}};
    auto memory = GuestMemory::create(specs);
    ASSERT_TRUE(memory);
    TempImage image(1 << 20);
    image.write(0, pattern(512, 9));
    auto config = FakeDriverQueue::packed_layout(16, GuestAddress(0x1000));
    // Header at 2 MiB - 272, the 512-byte buffer at 2 MiB - 256: half in each region.
    FakeDriverQueue driver(*memory, config, GuestAddress((2 << 20) - 272), 1 << 20);
    auto backend = BlockBackend::open(image.path(), {.engine = BlockOptions::Engine::Sync});
    ASSERT_TRUE(backend);
    FakeRegistrar events;  // must outlive the device, which unregisters on destruction
    virtio::VirtioBlk dev(std::move(*backend), "x");
    auto irq = std::make_shared<CountingInterrupt>();
    std::vector<virtio::Queue> queues;
    queues.push_back(*driver.create_queue(256, false, false));
    ASSERT_TRUE(dev.activate({*memory, irq, std::move(queues), dev.device_features(), events}));
    uint16_t r = driver.add_chain({{blk_header(kTIn, 0), false}, {512, true}, {1, true}});
    ASSERT_EQ(driver.buffer_addr(r, 1).value, (2u << 20) - 256);
    dev.queue_notify(0);
    events.handlers.begin()->second(EPOLLIN);
    auto used = driver.pop_used();
    ASSERT_TRUE(used);
    auto got = driver.writable_data(r);
    EXPECT_EQ(got.back(), kSOk);
    got.pop_back();
    EXPECT_EQ(got, pattern(512, 9));
}

// A FLUSH waits for earlier requests and holds back later ones. The sync
// engine runs I/O at submit time, so the submitted counter shows the order.
TEST_F(BlkTest, FlushIsABarrier) {
    start();
    uint16_t a =
        m_driver.add_chain({{blk_header(kTOut, 0), false}, {pattern(512, 1), false}, {1, true}});
    uint16_t f = m_driver.add_chain({{blk_header(kTFlush, 0), false}, {1, true}});
    uint16_t b =
        m_driver.add_chain({{blk_header(kTOut, 0), false}, {pattern(512, 2), false}, {1, true}});
    uint16_t c = m_driver.add_chain({{blk_header(kTIn, 8), false}, {512, true}, {1, true}});
    auto& handler = m_events.handlers.begin()->second;

    m_dev->queue_notify(0);
    EXPECT_EQ(m_dev->stats().submitted, 1u);  // only A; the flush waits for it
    EXPECT_EQ(m_image.read(0, 512), pattern(512, 1));
    EXPECT_EQ(m_driver.used_idx(), 0);

    handler(EPOLLIN);  // A completes, the flush goes
    EXPECT_EQ(m_dev->stats().submitted, 2u);
    EXPECT_EQ(m_driver.used_idx(), 1);

    handler(EPOLLIN);  // the flush completes, B and C go
    EXPECT_EQ(m_dev->stats().submitted, 4u);
    EXPECT_EQ(m_image.read(0, 512), pattern(512, 2));
    finish();
    EXPECT_EQ(next_status(a), kSOk);
    EXPECT_EQ(next_status(f), kSOk);
    EXPECT_EQ(next_status(b), kSOk);
    EXPECT_EQ(next_status(c), kSOk);
    EXPECT_EQ(m_dev->stats().flushes, 1u);
}

TEST_F(BlkTest, FlushWithNothingInFlightGoesAtOnce) {
    start();
    uint16_t f = m_driver.add_chain({{blk_header(kTFlush, 0), false}, {1, true}});
    m_dev->queue_notify(0);
    EXPECT_EQ(m_dev->stats().submitted, 1u);
    finish();
    EXPECT_EQ(next_status(f), kSOk);
}

TEST_F(BlkTest, GetId) {
    start();
    uint16_t id = m_driver.add_chain({{blk_header(kTGetId, 0), false}, {20, true}, {1, true}});
    run();
    auto used = m_driver.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(used->len, 21u);
    auto got = m_driver.writable_data(id);
    EXPECT_EQ(got.back(), kSOk);
    std::string expected("rv-test-serial");
    expected.resize(20, '\0');
    EXPECT_EQ(std::string(got.begin(), got.begin() + 20), expected);
}

TEST_F(BlkTest, DiscardAndWriteZeroes) {
    m_image.write(0, std::vector<uint8_t>(65536, 0xee));
    start();
    uint16_t d = m_driver.add_chain(
        {{concat(blk_header(kTDiscard, 0), blk_segments({{8, 8, 0}, {32, 16, 0}})), false},
         {1, true}});
    uint16_t z = m_driver.add_chain({{blk_header(kTWriteZeroes, 0), false},
                                     {blk_segments({{64, 8, kSegmentFlagUnmap}}), false},
                                     {1, true}});
    run();
    EXPECT_EQ(next_status(d), kSOk);
    EXPECT_EQ(next_status(z), kSOk);
    EXPECT_EQ(m_image.read(0, 4096), std::vector<uint8_t>(4096, 0xee));
    EXPECT_EQ(m_image.read(4096, 4096), std::vector<uint8_t>(4096, 0));
    EXPECT_EQ(m_image.read(8192, 8192), std::vector<uint8_t>(8192, 0xee));
    EXPECT_EQ(m_image.read(16384, 8192), std::vector<uint8_t>(8192, 0));
    EXPECT_EQ(m_image.read(32768, 4096), std::vector<uint8_t>(4096, 0));
    EXPECT_EQ(m_image.read(36864, 4096), std::vector<uint8_t>(4096, 0xee));
}

TEST_F(BlkTest, OneInterruptPerBatch) {
    start();
    for (int i = 0; i < 5; ++i)
        m_driver.add_chain({{blk_header(kTIn, i), false}, {512, true}, {1, true}});
    run();
    EXPECT_EQ(m_driver.used_idx(), 5);
    EXPECT_EQ(m_irq->used, 1);
    EXPECT_EQ(m_dev->stats().interrupts, 1u);
    EXPECT_EQ(m_dev->stats().notifications, 1u);
}

TEST_F(BlkTest, NoInterruptWhenDriverSuppressesThem) {
    start({.engine = BlockOptions::Engine::Sync}, 0, /*event_idx=*/false);
    m_driver.set_avail_flags(virtio::kAvailFNoInterrupt);
    m_driver.add_chain({{blk_header(kTIn, 0), false}, {512, true}, {1, true}});
    run();
    EXPECT_EQ(m_driver.used_idx(), 1);
    EXPECT_EQ(m_irq->used, 0);
}

// Reset waits for in-flight I/O, unregisters the fd and drops completions;
// the device then works again after a new activation.
TEST_F(BlkTest, ResetWithRequestsInFlight) {
    start({.engine = BlockOptions::Engine::IoUring});
    for (int i = 0; i < 8; ++i)
        m_driver.add_chain({{blk_header(kTIn, i * 8), false}, {4096, true}, {1, true}});
    m_dev->queue_notify(0);
    m_dev->reset();
    EXPECT_TRUE(m_events.handlers.empty());
    EXPECT_TRUE(m_dev->idle());
    EXPECT_EQ(m_driver.used_idx(), 0);  // nothing completed to the old queue

    FakeDriverQueue fresh(m_memory, 64, GuestAddress(0x100000));
    auto queue = fresh.create_queue(256, true, true);
    ASSERT_TRUE(queue);
    std::vector<virtio::Queue> queues;
    queues.push_back(std::move(*queue));
    ASSERT_TRUE(
        m_dev->activate({m_memory, m_irq, std::move(queues), m_dev->device_features(), m_events}));
    uint16_t r = fresh.add_chain({{blk_header(kTIn, 0), false}, {512, true}, {1, true}});
    run();
    auto used = fresh.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, r);
    EXPECT_EQ(fresh.writable_data(r).back(), kSOk);
}

// A read's data pages are marked for dirty tracking when the read completes,
// not when it is submitted: a dirty pass in between (a live migration's
// round) would otherwise send the old bytes and take the mark. A write's
// buffers are only read, so they are not marked at all. A read dropped by a
// reset still marks what it may have written.
TEST_F(BlkTest, ReadPagesAreMarkedDirtyWhenTheReadCompletes) {
    start({.engine = BlockOptions::Engine::IoUring});
    auto marked = [](const std::vector<uint64_t>& bits, uint64_t addr) {
        const uint64_t page = addr / GuestMemory::kDirtyPageSize;
        return ((bits[page / 64] >> (page % 64)) & 1) != 0;
    };
    m_memory.set_dirty_tracking(true);
    uint16_t r = m_driver.add_chain({{blk_header(kTIn, 0), false}, {8192, true}, {1, true}});
    const uint64_t data = m_driver.desc(m_driver.desc(r).next).addr;
    (void)m_memory.take_dirty(0);
    m_dev->queue_notify(0);                          // submitted
    const auto between = m_memory.take_dirty(0);     // a dirty pass before the completion
    finish();
    EXPECT_EQ(next_status(r), kSOk);
    const auto after = m_memory.take_dirty(0);
    EXPECT_FALSE(marked(between, data)) << "marked before the bytes were there";
    EXPECT_TRUE(marked(after, data));
    EXPECT_TRUE(marked(after, data + 8191));

    uint16_t w = m_driver.add_chain(
        {{blk_header(kTOut, 0), false}, {std::vector<uint8_t>(4096, 7), false}, {1, true}});
    const uint64_t written = m_driver.desc(m_driver.desc(w).next).addr;
    (void)m_memory.take_dirty(0);
    run();
    EXPECT_EQ(next_status(w), kSOk);
    EXPECT_FALSE(marked(m_memory.take_dirty(0), written)) << "a disk write only reads guest memory";

    r = m_driver.add_chain({{blk_header(kTIn, 8), false}, {4096, true}, {1, true}});
    const uint64_t dropped = m_driver.desc(m_driver.desc(r).next).addr;
    m_dev->queue_notify(0);
    (void)m_memory.take_dirty(0);
    m_dev->reset();
    EXPECT_TRUE(marked(m_memory.take_dirty(0), dropped));
}

}  // namespace
}  // namespace rv::test
