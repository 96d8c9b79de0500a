// virtio-blk under a rate limiter on a manual clock: the device moves at
// most size + rate * elapsed bytes, holds the queue (pops nothing more)
// while throttled, resumes from its timer once the clock has moved,
// releases everything when the limit is lifted at runtime, counts ops, and
// lets a request larger than the bucket through from a full bucket. In a
// rate limit group, a request needs the group's tokens too, and the timer
// waits for the later of the two.
#include "blk_test_util.h"
#include "devices/rate_limit_group.h"
#include "support/device_counters.h"
#include "support/limiter_timer.h"
#include "support/manual_clock.h"

namespace rv::test {
namespace {

using namespace virtio::blk;

constexpr uint64_t kMs = 1'000'000;
constexpr uint32_t kChunk = 32 << 10;

// 1 MiB/s: a 256 KiB bucket that refills in 250 ms.
RateLimiterConfig one_mib_per_second() {
    return RateLimiterConfig{.bandwidth = TokenBucketConfig{256 << 10, 0, 250}};
}

class BlkRateLimitTest : public BlkTest {
  protected:
    void start_limited(std::optional<RateLimiterConfig> limiter,
                       std::shared_ptr<RateLimitGroup> group = nullptr) {
        auto backend = BlockBackend::open(m_image.path(), {.engine = BlockOptions::Engine::Sync});
        ASSERT_TRUE(backend) << backend.error().message();
        m_dev = std::make_unique<virtio::VirtioBlk>(std::move(*backend), "rv-test-serial", 1, limiter,
                                                    m_clock.function(), std::move(group));
        activate();
    }
    // `n` reads of kChunk bytes (indirect, so the 64-entry ring holds them all).
    std::vector<uint16_t> publish_reads(int n) {
        std::vector<uint16_t> heads;
        for (int i = 0; i < n; ++i)
            heads.push_back(m_driver.add_indirect_chain(
                {{blk_header(kTIn, uint64_t(i) * (kChunk / 512)), false},
                 {kChunk, true},
                 {1, true}}));
        return heads;
    }
    // Delivers completions the way the event loop would, without waiting
    // (the sync engine completes at submit time); the limiter timer is left
    // to fire_timer().
    void deliver() {
        int timer = m_dev->rate_limiter_timer_fd();
        for (int i = 0; i < 100; ++i) {
            bool ran = false;
            for (auto& [fd, handler] : std::map(m_events.handlers)) {
                if (fd == timer || !fd_readable(fd)) continue;
                handler(EPOLLIN);
                ran = true;
            }
            if (!ran) return;
        }
    }
    // Completions the driver has not seen yet, all of which must be OK.
    size_t completed() {
        size_t n = 0;
        while (auto used = m_driver.pop_used()) {
            EXPECT_EQ(status_of(static_cast<uint16_t>(used->id), *used), kSOk);
            ++n;
        }
        return n;
    }
    // The limiter timer is armed (for at most `within_ns`); the test takes it
    // over: advances the manual clock, then runs the handler.
    void expect_timer(uint64_t within_ns) {
        auto left = take_armed_timer(m_dev->rate_limiter_timer_fd());
        ASSERT_TRUE(left) << "no limiter timer armed";
        EXPECT_LE(*left, within_ns);
    }
    void fire_timer() { m_events.handlers.at(m_dev->rate_limiter_timer_fd())(EPOLLIN); }

    ManualNsClock m_clock;
};

TEST_F(BlkRateLimitTest, MovesAtMostBucketPlusRateTimesElapsed) {
    start_limited(one_mib_per_second());
    publish_reads(24);  // 768 KiB
    m_dev->queue_notify(0);
    expect_timer(31 * kMs + kMs);  // one more chunk: 32 KiB at 1 MiB/s = 31.25 ms
    deliver();
    EXPECT_EQ(completed(), 8u);              // the full bucket: 256 KiB
    EXPECT_EQ(m_dev->stats().requests, 9u);  // the 9th is held, nothing more popped
    EXPECT_FALSE(m_dev->idle());

    // A guest kick while throttled pops nothing and costs no retry.
    m_dev->queue_notify(0);
    EXPECT_EQ(m_dev->stats().requests, 9u);
    EXPECT_EQ(m_dev->stats().throttled, 1u);

    // 125 ms later: 128 KiB more, when the timer fires.
    m_clock.advance_ms(125);
    fire_timer();
    expect_timer(32 * kMs);
    deliver();
    EXPECT_EQ(completed(), 4u);
    EXPECT_EQ(m_dev->stats().read_bytes, 12u * kChunk);
    EXPECT_LE(m_dev->stats().read_bytes, (256u << 10) + (1u << 20) * 125 / 1000);

    // A long wait refills the bucket, never more: 256 KiB.
    m_clock.advance_ms(5000);
    fire_timer();
    expect_timer(32 * kMs);
    deliver();
    EXPECT_EQ(completed(), 8u);
    // The last four chunks: 125 ms.
    m_clock.advance_ms(125);
    fire_timer();
    deliver();
    EXPECT_EQ(completed(), 4u);
    EXPECT_TRUE(m_dev->idle());
    EXPECT_EQ(test::counter(m_dev->counters(), "throttled"), 3u);
    EXPECT_FALSE(take_armed_timer(m_dev->rate_limiter_timer_fd()));  // nothing left to wait for
}

// The time the limiter held requests back, on its clock: from the refusal
// until its timer let the held request go, the hold in progress included;
// a reset ends a hold.
TEST_F(BlkRateLimitTest, TimeHeldBackIsCountedFromRefusalToRelease) {
    start_limited(one_mib_per_second());
    publish_reads(9);  // the bucket takes 8
    m_dev->queue_notify(0);
    deliver();
    EXPECT_EQ(completed(), 8u);
    EXPECT_EQ(m_dev->stats().throttled_us, 0u);
    m_clock.advance_ms(20);
    EXPECT_EQ(m_dev->stats().throttled_us, 20000u) << "the hold in progress counts";
    m_clock.advance_ms(15);  // 35 KiB: the held 32 KiB go
    fire_timer();
    deliver();
    EXPECT_EQ(completed(), 1u);
    m_clock.advance_ms(500);  // idle: not held
    EXPECT_EQ(m_dev->stats().throttled_us, 35000u);
    EXPECT_EQ(test::counter(m_dev->counters(), "throttled_us"), 35000u);

    publish_reads(16);  // a full bucket again: 8 go, the 9th is held
    m_dev->queue_notify(0);
    deliver();
    EXPECT_EQ(completed(), 8u);
    m_clock.advance_ms(7);
    m_dev->reset();
    m_clock.advance_ms(100);
    EXPECT_EQ(m_dev->stats().throttled_us, 42000u);
}

TEST_F(BlkRateLimitTest, LiftingTheLimitReleasesTheRestAtOnce) {
    start_limited(one_mib_per_second());
    publish_reads(16);
    m_dev->queue_notify(0);
    deliver();
    EXPECT_EQ(completed(), 8u);
    ASSERT_TRUE(take_armed_timer(m_dev->rate_limiter_timer_fd()));

    ASSERT_TRUE(m_dev->set_rate_limiter(std::nullopt));
    expect_timer(kMs);  // "at once", on the event loop; the clock has not moved
    fire_timer();
    deliver();
    EXPECT_EQ(completed(), 8u);
    EXPECT_TRUE(m_dev->idle());
    // Unlimited from now on: nothing waits, nothing arms.
    publish_reads(16);
    m_dev->queue_notify(0);
    deliver();
    EXPECT_EQ(completed(), 16u);
    EXPECT_FALSE(take_armed_timer(m_dev->rate_limiter_timer_fd()));
}

TEST_F(BlkRateLimitTest, RaisingTheLimitTakesEffectAtOnce) {
    start_limited(one_mib_per_second());
    publish_reads(16);
    m_dev->queue_notify(0);
    deliver();
    EXPECT_EQ(completed(), 8u);
    (void)take_armed_timer(m_dev->rate_limiter_timer_fd());
    // A new 128 KiB bucket starts full: four more chunks, then a wait.
    ASSERT_TRUE(m_dev->set_rate_limiter(
        RateLimiterConfig{.bandwidth = TokenBucketConfig{128 << 10, 0, 1000}}));
    fire_timer();
    deliver();
    EXPECT_EQ(completed(), 4u);
    expect_timer(250 * kMs);  // 32 KiB at 128 KiB/s
}

TEST_F(BlkRateLimitTest, OpsLimitTheNumberOfRequests) {
    start_limited(RateLimiterConfig{.ops = TokenBucketConfig{4, 0, 1000}});
    for (int i = 0; i < 10; ++i)
        m_driver.add_chain(
            {{blk_header(kTOut, uint64_t(i)), false}, {pattern(512, 3), false}, {1, true}});
    m_dev->queue_notify(0);
    expect_timer(250 * kMs);
    deliver();
    EXPECT_EQ(completed(), 4u);
    m_clock.advance_ms(500);  // two more ops
    fire_timer();
    deliver();
    EXPECT_EQ(completed(), 2u);
    m_clock.advance_ms(1000);  // a full bucket again: the last four
    fire_timer();
    deliver();
    EXPECT_EQ(completed(), 4u);
    EXPECT_TRUE(m_dev->idle());
}

// A request larger than the bucket goes through once the bucket is full and
// leaves a debt the next request waits out.
TEST_F(BlkRateLimitTest, RequestLargerThanTheBucketGetsThrough) {
    start_limited(RateLimiterConfig{.bandwidth = TokenBucketConfig{64 << 10, 0, 1000}});
    uint16_t big =
        m_driver.add_indirect_chain({{blk_header(kTIn, 0), false}, {256 << 10, true}, {1, true}});
    uint16_t small = m_driver.add_chain({{blk_header(kTIn, 0), false}, {4096, true}, {1, true}});
    m_dev->queue_notify(0);
    deliver();
    EXPECT_EQ(next_status(big), kSOk);
    EXPECT_FALSE(m_driver.pop_used());
    // The debt (192 KiB) and 4 KiB more, at 64 KiB/s: 3.0625 s.
    expect_timer(3063 * kMs);
    m_clock.advance_ms(3000);
    fire_timer();  // not yet: re-armed for the rest
    deliver();
    EXPECT_FALSE(m_driver.pop_used());
    expect_timer(63 * kMs);
    m_clock.advance_ms(63);
    fire_timer();
    deliver();
    EXPECT_EQ(next_status(small), kSOk);
}

TEST_F(BlkRateLimitTest, WithoutALimiterNoTimerExists) {
    start_limited(std::nullopt);
    publish_reads(16);
    m_dev->queue_notify(0);
    deliver();
    EXPECT_EQ(completed(), 16u);
    EXPECT_EQ(m_dev->rate_limiter_timer_fd(), -1);
    EXPECT_EQ(test::counter(m_dev->counters(), "throttled"), 0u);
}

TEST_F(BlkRateLimitTest, LimitSetWhileRunningAppliesToTheNextRequests) {
    start_limited(std::nullopt);
    ASSERT_TRUE(m_dev->set_rate_limiter(one_mib_per_second()));
    ASSERT_NE(m_dev->rate_limiter_timer_fd(), -1);
    EXPECT_TRUE(m_events.handlers.contains(m_dev->rate_limiter_timer_fd()));
    publish_reads(10);
    m_dev->queue_notify(0);
    deliver();
    EXPECT_EQ(completed(), 8u);
    // Reset forgets the held request and takes the timer off the loop.
    m_dev->reset();
    EXPECT_TRUE(m_events.handlers.empty());
    EXPECT_TRUE(m_dev->idle());
    EXPECT_EQ(m_dev->rate_limiter_timer_fd(), -1);
}

// A drive in a group (1 MiB/s of its own, 128 KiB/s for the group, which
// another VM's drive also draws from): a request needs both, the timer
// waits for the later of the two, and a refusal by the group costs the
// drive's own bucket nothing.
TEST_F(BlkRateLimitTest, InAGroupTheLaterOfTheTwoWaitsDecides) {
    auto group = RateLimitGroup::anonymous(
        {"g", {.bandwidth = TokenBucketConfig{128 << 10, 0, 1000}}}, m_clock());
    ASSERT_TRUE(group) << group.error().message();
    start_limited(one_mib_per_second(), *group);
    RateLimiter other_vm(std::nullopt, m_clock.function(), *group);
    publish_reads(16);
    m_dev->queue_notify(0);
    // The group's 128 KiB: four chunks. The fifth: 128 KiB left of our own
    // (no wait), 32 KiB of the group's at 128 KiB/s (250 ms).
    expect_timer(250 * kMs);
    deliver();
    EXPECT_EQ(completed(), 4u);
    EXPECT_EQ(m_dev->stats().throttled, 1u);
    // The other VM takes what refilled first: we are refused again and wait again.
    m_clock.advance_ms(250);
    ASSERT_TRUE(other_vm.consume(kChunk, 1));
    fire_timer();
    expect_timer(250 * kMs);
    deliver();
    EXPECT_EQ(completed(), 0u);
    EXPECT_EQ(m_dev->stats().throttled, 2u);
    // Now our own bucket is the slower: 32 KiB per second, a fresh bucket
    // (full: one chunk). After a second the group has all 128 KiB again;
    // one chunk goes, and the next waits a second for our own bucket.
    ASSERT_TRUE(m_dev->set_rate_limiter(
        RateLimiterConfig{.bandwidth = TokenBucketConfig{kChunk, 0, 1000}}));
    (void)take_armed_timer(m_dev->rate_limiter_timer_fd());
    m_clock.advance_ms(1000);
    fire_timer();
    auto left = take_armed_timer(m_dev->rate_limiter_timer_fd());
    ASSERT_TRUE(left);
    EXPECT_GT(*left, 750 * kMs);  // not the group's 0
    EXPECT_LE(*left, 1000 * kMs);
    deliver();
    EXPECT_EQ(completed(), 1u);
    EXPECT_EQ((*group)->status().bandwidth_budget, (128 << 10) - kChunk);
    // Lifting our own limit leaves the group's: three more chunks, then 250 ms.
    ASSERT_TRUE(m_dev->set_rate_limiter(std::nullopt));
    fire_timer();
    expect_timer(250 * kMs);
    deliver();
    EXPECT_EQ(completed(), 3u);
}

}  // namespace
}  // namespace rv::test
