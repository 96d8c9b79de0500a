// The rx and tx rate limiters of a multiqueue virtio-net are the device's:
// all pairs draw from one bucket, so two busy pairs together move what one
// would, and the limiter's timer resumes every pair it held.
#include "support/device_counters.h"
#include "support/limiter_timer.h"
#include "support/manual_clock.h"
#include "unit/virtio_net/net_mq_fixture.h"

namespace rv::test {
namespace {

using namespace virtio;

constexpr size_t kFrame = 4096;
constexpr size_t kBucketFrames = 16;  // a 64 KiB bucket

RateLimiterConfig bucket_of_16_frames() {
    return RateLimiterConfig{.bandwidth = TokenBucketConfig{kBucketFrames * kFrame, 0, 64}};
}

class NetMqLimitTest : public NetMqTest {
  protected:
    void start(std::optional<RateLimiterConfig> rx, std::optional<RateLimiterConfig> tx) {
        recreate({.mac = kTestMac,
                  .rx_rate_limiter = rx,
                  .tx_rate_limiter = tx,
                  .clock_ns = clock.function()});
        activate();
        ASSERT_EQ(set_pairs(2), kNetCtrlOk);
    }
    ManualNsClock clock;
};

TEST_F(NetMqLimitTest, TxPairsShareOneBucket) {
    start(std::nullopt, bucket_of_16_frames());
    for (unsigned pair = 0; pair < 2; ++pair)
        for (size_t i = 0; i < 12; ++i) txq(pair).add_chain({{make_packet(kFrame), false}});
    dev->queue_notify(VirtioNet::tx_queue(0));
    dev->queue_notify(VirtioNet::tx_queue(1));
    const size_t sent0 = nets[0]->receive_all().size();
    const size_t sent1 = nets[1]->receive_all().size();
    EXPECT_EQ(sent0, 12u);
    EXPECT_EQ(sent1, kBucketFrames - 12) << "pair 1 gets what pair 0 left in the one bucket";
    EXPECT_EQ(test::counter(dev->counters(), "tx_rate_limited"), 1u);

    // The refill (1 KiB per ms) is shared too; the timer resumes pair 1.
    clock.advance_ms(64);
    ASSERT_TRUE(take_armed_timer(dev->tx_limiter_timer_fd()));
    ASSERT_TRUE(events.fire(dev->tx_limiter_timer_fd()));
    EXPECT_EQ(nets[1]->receive_all().size(), 24 - kBucketFrames);
    EXPECT_EQ(dev->stats().tx_packets, 24u);
}

TEST_F(NetMqLimitTest, RxPairsShareOneBucket) {
    start(bucket_of_16_frames(), std::nullopt);
    for (unsigned pair = 0; pair < 2; ++pair) {
        for (size_t i = 0; i < 12; ++i) {
            rxq(pair).add_chain({{static_cast<uint32_t>(kFrame + 64), true}});
            ASSERT_TRUE(nets[pair]->send(make_packet(kFrame, static_cast<uint8_t>(i))));
        }
        dev->queue_notify(VirtioNet::rx_queue(pair));
    }
    events.run_until_idle();
    size_t got = 0;
    for (unsigned pair = 0; pair < 2; ++pair)
        while (rxq(pair).pop_used()) ++got;
    EXPECT_EQ(got, kBucketFrames) << "one bucket for both pairs, not one each";
    EXPECT_EQ(dev->stats().rx_bytes, kBucketFrames * kFrame);

    clock.advance_ms(64);
    ASSERT_TRUE(take_armed_timer(dev->rx_limiter_timer_fd()));
    ASSERT_TRUE(events.fire(dev->rx_limiter_timer_fd()));
    events.run_until_idle();
    for (unsigned pair = 0; pair < 2; ++pair)
        while (rxq(pair).pop_used()) ++got;
    EXPECT_EQ(got, 24u);
}

}  // namespace
}  // namespace rv::test
