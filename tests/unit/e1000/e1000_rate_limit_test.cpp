// The e1000 under rx and tx rate limiters on the device's (manual) clock:
// each direction moves at most size + rate * elapsed frame bytes. TX stops
// at the refused packet's EOP descriptor (TDH stays, no DD) and resumes from
// its timer; RX holds the refused packet, stops polling the backend and
// resumes from its timer; lifting a limit releases the rest at once; ops
// count packets; a frame larger than the bucket gets through.
#include "support/device_counters.h"
#include "support/limiter_timer.h"
#include "unit/e1000/e1000_fixture.h"

namespace rv::test {
namespace {

using namespace e1000;

constexpr uint64_t kMs = 1'000'000;
constexpr uint8_t kEopRs = kTxCmdEop | kTxCmdIfcs | kTxCmdRs;
constexpr size_t kFrame = 1024;

// About 1 MiB/s: a 16 KiB bucket that refills in 16 ms (1 KiB per ms).
RateLimiterConfig mib_per_second() {
    return RateLimiterConfig{.bandwidth = TokenBucketConfig{16 << 10, 0, 16}};
}

class E1000RateLimitTest : public E1000Test {
  protected:
    void make_limited(std::optional<RateLimiterConfig> rx, std::optional<RateLimiterConfig> tx) {
        dev.reset();  // off the registrar before the new one registers
        auto [backend, p] = FakeNetBackend::create();
        peer = p;
        E1000Config config{.mac = kMac,
                           .clock_ns = [c = clock] { return c->load(); },
                           .rx_rate_limiter = rx,
                           .tx_rate_limiter = tx};
        auto created = E1000::create(mem, std::move(backend), config, events);
        ASSERT_TRUE(created) << created.error().message();
        dev = std::move(*created);
        dev->assign_intx(irq);
    }
    // `n` one-descriptor frames of `len` bytes at the TX tail; returns the
    // index of the first.
    uint32_t queue_frames(size_t n, size_t len = kFrame) {
        uint32_t first = tx_tail;
        for (size_t i = 0; i < n; ++i) {
            auto frame = eth_frame(kPeerMac, len - 14, 0x0800, static_cast<uint8_t>(i));
            put_tx(legacy_desc(tx_data(frame), static_cast<uint16_t>(frame.size()), kEopRs));
        }
        return first;
    }
    static void expect_timer(int fd, uint64_t within_ns) {
        auto left = take_armed_timer(fd);
        ASSERT_TRUE(left) << "no limiter timer armed";
        EXPECT_LE(*left, within_ns);
    }
    uint64_t count(std::string_view name) { return test::counter(dev->counters(), name).value(); }
};

TEST_F(E1000RateLimitTest, TxMovesAtMostBucketPlusRateTimesElapsed) {
    make_limited(std::nullopt, mib_per_second());
    setup_tx(64);
    queue_frames(32);
    kick_tx();
    EXPECT_EQ(sent_frames().size(), 16u);
    EXPECT_EQ(read32(reg::kTdh), 16u);  // stopped at the refused packet
    EXPECT_FALSE(tx_status(16) & kTxStaDd);
    EXPECT_EQ(count("tx_rate_limited"), 1u);
    expect_timer(dev->tx_limiter_timer_fd(), 1 * kMs);

    kick_tx();  // TDT writes while throttled do nothing
    EXPECT_TRUE(sent_frames().empty());
    EXPECT_EQ(count("tx_throttled"), 1u);

    *clock += 4 * kMs;  // 4 KiB
    ASSERT_TRUE(events.fire(dev->tx_limiter_timer_fd()));
    EXPECT_EQ(sent_frames().size(), 4u);
    EXPECT_EQ(read32(reg::kTdh), 20u);
    EXPECT_TRUE(tx_status(19) & kTxStaDd);
    (void)take_armed_timer(dev->tx_limiter_timer_fd());
    EXPECT_EQ(count("tx_throttled_us"), 4000u) << "held since the refusal, still held";

    *clock += 1 * kMs;
    ASSERT_TRUE(dev->set_tx_rate_limiter(std::nullopt));
    expect_timer(dev->tx_limiter_timer_fd(), kMs);  // at once
    ASSERT_TRUE(events.fire(dev->tx_limiter_timer_fd()));
    EXPECT_EQ(sent_frames().size(), 12u);
    EXPECT_EQ(read32(reg::kTdh), 32u);
    EXPECT_EQ(count("tx_rate_limited"), 0u);
    *clock += 10 * kMs;  // nothing held: not counted
    EXPECT_EQ(dev->stats().tx_throttled_us, 5000u);
    EXPECT_EQ(count("rx_throttled_us"), 0u);
}

// A multi-descriptor packet refused at its EOP is sent whole later.
TEST_F(E1000RateLimitTest, TxRetriesARefusedPacketWhole) {
    make_limited(std::nullopt, RateLimiterConfig{.ops = TokenBucketConfig{1, 0, 1000}});
    setup_tx(8);
    queue_frames(1, 60);
    auto frame = eth_frame(kPeerMac, 1000);
    std::span<const uint8_t> f(frame);
    put_tx(legacy_desc(tx_data(f.first(14)), 14, kTxCmdIfcs));
    put_tx(legacy_desc(tx_data(f.subspan(14)), 1000, kEopRs));
    kick_tx();
    EXPECT_EQ(sent_frames().size(), 1u);
    EXPECT_EQ(read32(reg::kTdh), 2u);  // at the EOP of the second packet
    *clock += 1000 * kMs;
    ASSERT_TRUE(events.fire(dev->tx_limiter_timer_fd()));
    auto sent = sent_frames();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0], frame);
    EXPECT_EQ(read32(reg::kTdh), 3u);
}

TEST_F(E1000RateLimitTest, TxFrameLargerThanTheBucketGetsThrough) {
    make_limited(std::nullopt, RateLimiterConfig{.bandwidth = TokenBucketConfig{1024, 0, 1000}});
    setup_tx(8);
    queue_frames(1, 4000);
    queue_frames(1, 100);
    kick_tx();
    EXPECT_EQ(sent_frames().size(), 1u);
    // The debt (2976) and 100 more at 1024/s: about 3 s.
    expect_timer(dev->tx_limiter_timer_fd(), 3004 * kMs);
    *clock += 3004 * kMs;
    ASSERT_TRUE(events.fire(dev->tx_limiter_timer_fd()));
    EXPECT_EQ(sent_frames().size(), 1u);
}

TEST_F(E1000RateLimitTest, RxHoldsThePacketAndStopsPolling) {
    make_limited(mib_per_second(), std::nullopt);
    setup_rx(64, 63);
    const int fd = peer->device_end.get();
    for (int i = 0; i < 32; ++i) inject(eth_frame(kMac, kFrame - 14, 0x0800, uint8_t(i)));
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 16u);
    EXPECT_FALSE(events.registered(fd)) << "the backend is not polled while throttled";
    EXPECT_TRUE(peer->device_readable()) << "the rest waits in the backend";
    EXPECT_EQ(count("rx_rate_limited"), 1u);
    EXPECT_EQ(count("rx_retry_armed"), 0u);  // no posted-write polling either
    expect_timer(dev->rx_limiter_timer_fd(), 1 * kMs);

    write32(reg::kRdt, 0);  // an RDT write while throttled does nothing
    EXPECT_EQ(read32(reg::kRdh), 16u);

    *clock += 4 * kMs;  // the held packet and three more
    ASSERT_TRUE(events.fire(dev->rx_limiter_timer_fd()));
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 20u);
    EXPECT_EQ(dev->stats().rx_packets, 20u);
    (void)take_armed_timer(dev->rx_limiter_timer_fd());

    ASSERT_TRUE(dev->set_rx_rate_limiter(std::nullopt));
    expect_timer(dev->rx_limiter_timer_fd(), kMs);
    ASSERT_TRUE(events.fire(dev->rx_limiter_timer_fd()));
    events.run_until_idle();
    EXPECT_EQ(dev->stats().rx_packets, 32u);
    EXPECT_FALSE(peer->device_readable());
    EXPECT_TRUE(events.registered(fd));
    EXPECT_EQ(count("rx_rate_limited"), 0u);
}

TEST_F(E1000RateLimitTest, OpsLimitTheNumberOfPackets) {
    make_limited(RateLimiterConfig{.ops = TokenBucketConfig{3, 0, 1000}}, std::nullopt);
    setup_rx(16, 15);
    for (int i = 0; i < 8; ++i) inject(eth_frame(kMac, 60, 0x0800, uint8_t(i)));
    events.run_until_idle();
    EXPECT_EQ(dev->stats().rx_packets, 3u);
    expect_timer(dev->rx_limiter_timer_fd(), 334 * kMs);
    *clock += 1000 * kMs;
    ASSERT_TRUE(events.fire(dev->rx_limiter_timer_fd()));
    events.run_until_idle();
    EXPECT_EQ(dev->stats().rx_packets, 6u);
}

TEST_F(E1000RateLimitTest, ResetForgetsWhatWasHeld) {
    make_limited(RateLimiterConfig{.ops = TokenBucketConfig{1, 0, 1000}},
                 RateLimiterConfig{.ops = TokenBucketConfig{1, 0, 1000}});
    setup_rx(8, 7);
    setup_tx(8);
    inject(eth_frame(kMac, 60));
    inject(eth_frame(kMac, 60));
    queue_frames(2, 60);
    kick_tx();
    events.run_until_idle();
    EXPECT_EQ(count("rx_rate_limited"), 1u);
    EXPECT_EQ(count("tx_rate_limited"), 1u);
    write32(reg::kCtrl, kCtrlRst);
    EXPECT_EQ(count("rx_rate_limited"), 0u);
    EXPECT_EQ(count("tx_rate_limited"), 0u);
    EXPECT_FALSE(take_armed_timer(dev->rx_limiter_timer_fd()));
    EXPECT_FALSE(take_armed_timer(dev->tx_limiter_timer_fd()));
}

TEST_F(E1000RateLimitTest, WithoutLimitersNoTimersExist) {
    const size_t adds = events.adds();
    make_limited(std::nullopt, std::nullopt);
    EXPECT_EQ(events.adds() - adds, 2u);  // ITR and RX retry only
    EXPECT_EQ(dev->rx_limiter_timer_fd(), -1);
    EXPECT_EQ(dev->tx_limiter_timer_fd(), -1);
    setup_tx(64);
    queue_frames(32);
    kick_tx();
    EXPECT_EQ(sent_frames().size(), 32u);
    EXPECT_EQ(count("tx_throttled"), 0u);
    // Set at runtime, a limiter gets its timer.
    ASSERT_TRUE(dev->set_tx_rate_limiter(mib_per_second()));
    EXPECT_TRUE(events.registered(dev->tx_limiter_timer_fd()));
    const int fd = dev->tx_limiter_timer_fd();
    dev.reset();
    EXPECT_FALSE(events.registered(fd));
}

}  // namespace
}  // namespace rv::test
