// virtio-blk multiqueue (VIRTIO_BLK_F_MQ): what is offered, how many queues
// a driver may enable, completions on the queue a request came from (and its
// interrupt), per-queue accounting of outstanding requests, reset.
#include "blk_test_util.h"

namespace rv::test {
namespace {

using namespace virtio::blk;

// Records which queue each used-buffer interrupt named.
class QueueInterrupts final : public virtio::Interrupt {
  public:
    void signal_used_queue(uint16_t queue) override { queues.push_back(queue); }
    void signal_config_change() override { ++config; }
    std::vector<uint16_t> queues;
    int config{0};
};

class BlkMqTest : public testing::Test {
  protected:
    static constexpr uint16_t kRing = 64;

    void create(uint16_t num_queues) {
        auto backend = BlockBackend::open(m_image.path(), {.engine = BlockOptions::Engine::Sync});
        ASSERT_TRUE(backend) << backend.error().message();
        m_dev = std::make_unique<virtio::VirtioBlk>(std::move(*backend), "mq", num_queues);
    }
    // Activates with the first `enabled` driver queues and the device's
    // features (minus `drop`).
    Result<void> activate(size_t enabled, uint64_t drop = 0) {
        std::vector<virtio::Queue> queues;
        for (size_t i = 0; i < enabled; ++i) {
            auto q = m_drivers[i]->create_queue(virtio::VirtioBlk::kQueueSize, true, true);
            if (!q) return make_error("test queue {}: {}", i, q.error().message());
            queues.push_back(std::move(*q));
        }
        return m_dev->activate(
            {m_memory, m_irq, std::move(queues), m_dev->device_features() & ~drop, m_events});
    }
    // Delivers completions as the event loop would until the device is idle.
    void finish() {
        for (int i = 0; i < 100 && !m_dev->idle(); ++i) {
            auto handlers = m_events.handlers;  // a handler may change the registrations
            for (auto& [fd, handler] : handlers) handler(EPOLLIN);
        }
        ASSERT_TRUE(m_dev->idle());
    }
    uint16_t write_chain(size_t queue, uint64_t sector, uint8_t seed) {
        return m_drivers[queue]->add_chain(
            {{blk_header(kTOut, sector), false}, {pattern(512, seed), false}, {1, true}});
    }

    // Rings of queue i at 0x1000 + i * 0x4000 (64 entries take < 2 KiB),
    // buffers from 1 MiB + i * 1 MiB.
    static std::unique_ptr<FakeDriverQueue> driver(const GuestMemory& memory, size_t i) {
        return std::make_unique<FakeDriverQueue>(memory,
                               FakeDriverQueue::packed_layout(kRing, GuestAddress(0x1000 + i * 0x4000)),
                               GuestAddress((1 + i) << 20), 1 << 20);
    }

    TempImage m_image{1 << 20};
    GuestMemory m_memory = make_test_memory(8 << 20);
    std::unique_ptr<FakeDriverQueue> m_drivers[3]{driver(m_memory, 0), driver(m_memory, 1),
                                                  driver(m_memory, 2)};
    std::shared_ptr<QueueInterrupts> m_irq = std::make_shared<QueueInterrupts>();
    EpollRegistrar m_events;
    std::unique_ptr<virtio::VirtioBlk> m_dev;
};

TEST_F(BlkMqTest, OneQueueOffersNoMultiqueue) {
    create(1);
    EXPECT_EQ(m_dev->device_features() & kFMq, 0u);
    EXPECT_EQ(m_dev->queue_max_sizes().size(), 1u);
    EXPECT_EQ(m_dev->config().num_queues, 1);
}

TEST_F(BlkMqTest, SeveralQueuesAreOfferedInFeaturesAndConfigSpace) {
    create(4);
    EXPECT_NE(m_dev->device_features() & kFMq, 0u);
    EXPECT_EQ(m_dev->queue_max_sizes(), std::vector<uint16_t>(4, virtio::VirtioBlk::kQueueSize));
    uint16_t from_config = 0;
    std::array<uint8_t, 2> raw{};
    m_dev->read_config(offsetof(BlkConfig, num_queues), raw);
    std::memcpy(&from_config, raw.data(), 2);
    EXPECT_EQ(from_config, 4);
}

TEST_F(BlkMqTest, QueueCountIsClamped) {
    create(0);
    EXPECT_EQ(m_dev->config().num_queues, 1);
    create(1000);
    EXPECT_EQ(m_dev->config().num_queues, virtio::VirtioBlk::kMaxQueues);
}

TEST_F(BlkMqTest, DriverMayEnableFewerQueuesButNotMore) {
    create(2);
    auto three = activate(3);
    EXPECT_FALSE(three);
    m_dev->reset();
    // Without MQ acked only queue 0 may be used.
    EXPECT_FALSE(activate(2, kFMq));
    m_dev->reset();
    ASSERT_TRUE(activate(1));  // a guest with one CPU takes one queue
    uint16_t w = write_chain(0, 2, 7);
    m_dev->queue_notify(0);
    m_dev->queue_notify(1);  // not enabled: ignored
    finish();
    auto used = m_drivers[0]->pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, w);
    EXPECT_EQ(m_image.read(2 * 512, 512), pattern(512, 7));
}

TEST_F(BlkMqTest, EachCompletionGoesToItsOwnQueueAndInterrupt) {
    create(2);
    ASSERT_TRUE(activate(2));
    uint16_t w0 = write_chain(0, 10, 1);
    uint16_t w1 = write_chain(1, 20, 2);
    m_dev->queue_notify(1);
    finish();
    // Only queue 1 was kicked: queue 0's request waits for its own kick.
    EXPECT_FALSE(m_drivers[0]->pop_used());
    auto used1 = m_drivers[1]->pop_used();
    ASSERT_TRUE(used1);
    EXPECT_EQ(used1->id, w1);
    EXPECT_EQ(m_irq->queues, std::vector<uint16_t>{1});

    m_dev->queue_notify(0);
    finish();
    auto used0 = m_drivers[0]->pop_used();
    ASSERT_TRUE(used0);
    EXPECT_EQ(used0->id, w0);
    EXPECT_FALSE(m_drivers[1]->pop_used());
    EXPECT_EQ(m_irq->queues, (std::vector<uint16_t>{1, 0}));
    EXPECT_EQ(m_image.read(10 * 512, 512), pattern(512, 1));
    EXPECT_EQ(m_image.read(20 * 512, 512), pattern(512, 2));

    // A read on queue 1 of what queue 0 wrote.
    uint16_t r = m_drivers[1]->add_chain({{blk_header(kTIn, 10), false}, {512, true}, {1, true}});
    m_dev->queue_notify(1);
    finish();
    auto used = m_drivers[1]->pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, r);
    auto got = m_drivers[1]->writable_data(r);
    EXPECT_EQ(got.back(), kSOk);
    got.pop_back();
    EXPECT_EQ(got, pattern(512, 1));
    EXPECT_FALSE(m_dev->needs_reset());
}

// Outstanding requests are counted per queue: 40 in flight on queue 0 do not
// make queue 1's 30 look like a driver republishing heads (a count over the
// device would pass queue 1's size, 64, at its 25th).
TEST_F(BlkMqTest, AFullQueueDoesNotFailAnother) {
    create(2);
    ASSERT_TRUE(activate(2));
    auto write_indirect = [&](size_t q, uint64_t sector, uint8_t seed) {
        m_drivers[q]->add_indirect_chain(
            {{blk_header(kTOut, sector), false}, {pattern(512, seed), false}, {1, true}});
    };
    for (uint16_t i = 0; i < 40; ++i) write_indirect(0, i, static_cast<uint8_t>(i));
    m_dev->queue_notify(0);  // all in flight: completions not delivered yet
    ASSERT_FALSE(m_dev->idle());
    for (uint16_t i = 0; i < 30; ++i) write_indirect(1, 100 + i, static_cast<uint8_t>(i));
    m_dev->queue_notify(1);
    EXPECT_FALSE(m_dev->needs_reset());
    finish();
    for (size_t q = 0; q < 2; ++q) {
        int n = 0;
        while (m_drivers[q]->pop_used()) ++n;
        EXPECT_EQ(n, q == 0 ? 40 : 30) << "queue " << q;
    }
    EXPECT_EQ(m_image.read(129 * 512, 512), pattern(512, 29));
}

TEST_F(BlkMqTest, ResetAndActivateAgain) {
    create(2);
    ASSERT_TRUE(activate(2));
    write_chain(1, 5, 3);
    m_dev->queue_notify(1);
    m_dev->reset();  // in flight: drained, its completion dropped
    EXPECT_TRUE(m_dev->idle());
    m_drivers[0] = driver(m_memory, 0);
    m_drivers[1] = driver(m_memory, 1);
    m_irq->queues.clear();
    ASSERT_TRUE(activate(2));
    uint16_t w = write_chain(1, 6, 4);
    m_dev->queue_notify(1);
    finish();
    auto used = m_drivers[1]->pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, w);
    EXPECT_EQ(m_irq->queues, std::vector<uint16_t>{1});
}

}  // namespace
}  // namespace rv::test
