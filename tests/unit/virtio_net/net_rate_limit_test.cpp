// virtio-net under rx and tx rate limiters on a manual clock: each direction
// moves at most size + rate * elapsed frame bytes, holds its work (the tx
// chain back in the ring; the rx packet and its chains, with the tap no
// longer polled) until its timer fires after the clock has moved, lets
// everything through when the limit is lifted at runtime, counts ops, and
// passes a frame larger than the bucket.
#include "support/device_counters.h"
#include "support/limiter_timer.h"
#include "support/manual_clock.h"
#include "unit/virtio_net/net_fixture.h"

namespace rv::test {
namespace {

using virtio::VirtioNet;

constexpr uint64_t kMs = 1'000'000;
constexpr size_t kFrame = 4096;

// About 1 MiB/s: a 64 KiB bucket that refills in 64 ms (1 KiB per ms).
RateLimiterConfig mib_per_second() {
    return RateLimiterConfig{.bandwidth = TokenBucketConfig{64 << 10, 0, 64}};
}

class NetRateLimitTest : public NetTest {
  protected:
    void recreate(std::optional<RateLimiterConfig> rx, std::optional<RateLimiterConfig> tx) {
        dev.reset();  // off the registrar first
        auto [backend, state] = FakeNetBackend::create();
        net = state;
        auto created = VirtioNet::create(std::move(backend), {.mac = kTestMac,
                                                              .rx_rate_limiter = rx,
                                                              .tx_rate_limiter = tx,
                                                              .clock_ns = clock.function()});
        ASSERT_TRUE(created) << created.error().message();
        dev = std::move(*created);
        activate();
    }
    void publish_tx(size_t n, size_t frame = kFrame) {
        for (size_t i = 0; i < n; ++i)
            txq.add_chain({{make_packet(frame, static_cast<uint8_t>(i)), false}});
    }
    size_t sent() { return net->receive_all().size(); }
    size_t received() {
        size_t n = 0;
        while (rxq.pop_used()) ++n;
        return n;
    }
    // The timer is armed for at most `within_ns`; the test takes it over.
    static void expect_timer(int fd, uint64_t within_ns) {
        auto left = take_armed_timer(fd);
        ASSERT_TRUE(left) << "no limiter timer armed";
        EXPECT_LE(*left, within_ns);
    }

    ManualNsClock clock;
};

TEST_F(NetRateLimitTest, TxMovesAtMostBucketPlusRateTimesElapsed) {
    recreate(std::nullopt, mib_per_second());
    publish_tx(32);  // 128 KiB of frames
    dev->queue_notify(VirtioNet::kTxQueue);
    expect_timer(dev->tx_limiter_timer_fd(), 4 * kMs);  // 4 KiB at 1 KiB/ms
    EXPECT_EQ(sent(), 16u);                             // the 64 KiB bucket
    EXPECT_EQ(txq.used_idx(), 16);                      // the 17th went back to the ring
    const uint64_t throttled = dev->stats().tx_throttled;
    EXPECT_EQ(throttled, 1u);

    // Guest kicks while throttled do nothing.
    dev->queue_notify(VirtioNet::kTxQueue);
    EXPECT_EQ(sent(), 0u);
    EXPECT_EQ(dev->stats().tx_throttled, throttled);

    clock.advance_ms(32);  // 32 KiB
    ASSERT_TRUE(events.fire(dev->tx_limiter_timer_fd()));
    expect_timer(dev->tx_limiter_timer_fd(), 4 * kMs);
    EXPECT_EQ(sent(), 8u);
    EXPECT_LE(dev->stats().tx_bytes, (64u << 10) + 32u * 1024);
    EXPECT_EQ(dev->stats().tx_bytes, 24u * kFrame);

    // Lifting the limit releases the rest at once.
    ASSERT_TRUE(dev->set_tx_rate_limiter(std::nullopt));
    expect_timer(dev->tx_limiter_timer_fd(), kMs);
    ASSERT_TRUE(events.fire(dev->tx_limiter_timer_fd()));
    EXPECT_EQ(sent(), 8u);
    EXPECT_EQ(txq.used_idx(), 32);
    EXPECT_EQ(test::counter(dev->counters(), "tx_throttled"), throttled + 1);
}

// The time a limiter held work back: from the refusal until its timer let
// every held pair go, the hold in progress included, on the limiter's clock.
TEST_F(NetRateLimitTest, TimeHeldBackIsCountedFromRefusalToRelease) {
    recreate(std::nullopt, mib_per_second());
    publish_tx(17);  // the 64 KiB bucket takes 16
    dev->queue_notify(VirtioNet::kTxQueue);
    EXPECT_EQ(sent(), 16u);
    EXPECT_EQ(dev->stats().tx_throttled_us, 0u);

    clock.advance_ms(3);
    EXPECT_EQ(dev->stats().tx_throttled_us, 3000u) << "the hold in progress counts";
    clock.advance_ms(2);  // 5 KiB: the held frame goes, nothing is held any more
    ASSERT_TRUE(events.fire(dev->tx_limiter_timer_fd()));
    EXPECT_EQ(sent(), 1u);
    clock.advance_ms(50);  // idle: not held
    EXPECT_EQ(dev->stats().tx_throttled_us, 5000u);
    EXPECT_EQ(test::counter(dev->counters(), "tx_throttled_us"), 5000u);
    EXPECT_EQ(dev->stats().rx_throttled_us, 0u);

    // A second hold adds to the first; a reset ends it.
    publish_tx(32);
    dev->queue_notify(VirtioNet::kTxQueue);
    ASSERT_GT(dev->stats().tx_throttled, 1u);
    clock.advance_ms(7);
    dev->reset();
    clock.advance_ms(100);
    EXPECT_EQ(dev->stats().tx_throttled_us, 12000u);
}

// Smaller frames than TX: the test's own sends must fit the socket buffer.
TEST_F(NetRateLimitTest, RxHoldsThePacketAndStopsPollingTheTap) {
    constexpr size_t kRxFrame = 1024;
    // About 1 MiB/s: a 16 KiB bucket that refills in 16 ms (1 KiB per ms).
    recreate(RateLimiterConfig{.bandwidth = TokenBucketConfig{16 << 10, 0, 16}}, std::nullopt);
    for (int i = 0; i < 64; ++i) rxq.add_chain({{uint32_t{kRxFrame + 64}, true}});
    for (int i = 0; i < 32; ++i) ASSERT_TRUE(net->send(make_packet(kRxFrame, uint8_t(i))));
    events.run_until_idle();
    EXPECT_EQ(received(), 16u);
    EXPECT_EQ(interest(), 0u) << "the tap is not polled while throttled";
    EXPECT_TRUE(net->device_readable()) << "the rest waits in the tap";
    EXPECT_EQ(test::counter(dev->counters(), "rx_rate_limited"), 1u);
    EXPECT_GE(dev->stats().rx_throttled, 1u);
    expect_timer(dev->rx_limiter_timer_fd(), 1 * kMs);

    // An rx notify while throttled changes nothing.
    rxq.add_chain({{uint32_t{kRxFrame + 64}, true}});
    dev->queue_notify(VirtioNet::kRxQueue);
    EXPECT_EQ(received(), 0u);

    clock.advance_ms(4);  // 4 KiB: the held packet and three more
    ASSERT_TRUE(events.fire(dev->rx_limiter_timer_fd()));
    events.run_until_idle();
    EXPECT_EQ(received(), 4u);
    EXPECT_EQ(dev->stats().rx_bytes, 20u * kRxFrame);
    EXPECT_LE(dev->stats().rx_bytes, (16u << 10) + 4u * 1024);
    EXPECT_EQ(interest(), 0u);
    (void)take_armed_timer(dev->rx_limiter_timer_fd());

    ASSERT_TRUE(dev->set_rx_rate_limiter(std::nullopt));
    expect_timer(dev->rx_limiter_timer_fd(), kMs);
    ASSERT_TRUE(events.fire(dev->rx_limiter_timer_fd()));
    events.run_until_idle();
    EXPECT_EQ(received(), 12u);
    EXPECT_EQ(interest(), static_cast<uint32_t>(EPOLLIN));
    EXPECT_FALSE(net->device_readable());
    EXPECT_EQ(test::counter(dev->counters(), "rx_rate_limited"), 0u);
}

// A packet read straight into held chains and then refused by the limiter
// stays there, unreturned; a quiesce drops it and gives the chains back.
TEST_F(NetRateLimitTest, APacketHeldInPlaceIsDroppedAtQuiesceAndItsChainsGoBack) {
    recreate(RateLimiterConfig{.ops = TokenBucketConfig{1, 0, 1000}}, std::nullopt);
    for (int i = 0; i < 20; ++i) rxq.add_chain({{4096, true}});
    ASSERT_TRUE(net->send(make_packet(100, 1)));
    ASSERT_TRUE(net->send(make_packet(100, 2)));
    events.run_until_idle();
    EXPECT_EQ(received(), 1u);
    EXPECT_EQ(dev->stats().rx_in_place, 1u);
    EXPECT_EQ(test::counter(dev->counters(), "rx_held_packet"), 1u);
    EXPECT_EQ(test::counter(dev->counters(), "rx_held_chains"), 17u) << "65565 bytes and more";

    ASSERT_TRUE(dev->quiesce());
    EXPECT_EQ(dev->queue_states().at(VirtioNet::kRxQueue).next_avail, 1)
        << "the held chains are back in the ring";
    EXPECT_EQ(dev->stats().rx_dropped, 1u);
    EXPECT_EQ(test::counter(dev->counters(), "rx_held_packet"), 0u);
    EXPECT_EQ(test::counter(dev->counters(), "rx_held_chains"), 0u);
}

TEST_F(NetRateLimitTest, OpsLimitTheNumberOfPackets) {
    recreate(std::nullopt, RateLimiterConfig{.ops = TokenBucketConfig{4, 0, 1000}});
    publish_tx(10, 60);
    dev->queue_notify(VirtioNet::kTxQueue);
    EXPECT_EQ(sent(), 4u);
    expect_timer(dev->tx_limiter_timer_fd(), 250 * kMs);
    clock.advance_ms(500);
    ASSERT_TRUE(events.fire(dev->tx_limiter_timer_fd()));
    EXPECT_EQ(sent(), 2u);
}

TEST_F(NetRateLimitTest, FrameLargerThanTheBucketGetsThrough) {
    recreate(std::nullopt, RateLimiterConfig{.bandwidth = TokenBucketConfig{16 << 10, 0, 1000}});
    publish_tx(1, 60'000);
    publish_tx(1, 1000);
    dev->queue_notify(VirtioNet::kTxQueue);
    EXPECT_EQ(sent(), 1u);  // the big one, from the full bucket
    // The debt (60000 - 16384) and 1000 more, at 16 KiB/s: about 2.72 s.
    expect_timer(dev->tx_limiter_timer_fd(), 2724 * kMs);
    clock.advance_ms(2724);
    ASSERT_TRUE(events.fire(dev->tx_limiter_timer_fd()));
    EXPECT_EQ(sent(), 1u);
}

// A frame the backend cannot take (full) gets its tokens back: sent later,
// it is charged once.
TEST_F(NetRateLimitTest, BackpressureIsNotChargedTwice) {
    recreate(std::nullopt, RateLimiterConfig{.ops = TokenBucketConfig{40, 0, 1000}});
    publish_tx(60, 8000);
    dev->queue_notify(VirtioNet::kTxQueue);  // fills the socket: EAGAIN before 40
    ASSERT_GE(dev->stats().tx_backpressure, 1u);
    size_t total = 0;
    for (int i = 0; i < 20; ++i) {
        total += sent();
        events.run_until_idle();  // EPOLLOUT: a refused frame goes on its first tokens
    }
    total += sent();
    EXPECT_GE(dev->stats().tx_backpressure, 2u);
    EXPECT_EQ(total, 40u);  // every op token bought a frame
    EXPECT_GE(dev->stats().tx_throttled, 1u);
}

TEST_F(NetRateLimitTest, WithoutLimitersNoTimersExist) {
    recreate(std::nullopt, std::nullopt);
    publish_tx(16);
    dev->queue_notify(VirtioNet::kTxQueue);
    EXPECT_EQ(sent(), 16u);
    EXPECT_EQ(dev->rx_limiter_timer_fd(), -1);
    EXPECT_EQ(dev->tx_limiter_timer_fd(), -1);
    EXPECT_EQ(test::counter(dev->counters(), "tx_throttled"), 0u);
    // Set at runtime, a limiter gets its timer; reset takes it away.
    ASSERT_TRUE(dev->set_rx_rate_limiter(mib_per_second()));
    const int fd = dev->rx_limiter_timer_fd();
    EXPECT_TRUE(events.registered(fd));
    dev->reset();
    EXPECT_FALSE(events.registered(fd));
    EXPECT_EQ(dev->rx_limiter_timer_fd(), -1);
}

}  // namespace
}  // namespace rv::test
