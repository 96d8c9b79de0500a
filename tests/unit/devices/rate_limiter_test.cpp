// The token buckets against a manual clock: refill over time (fractions
// carried), the initial burst, one_time_burst, all-or-nothing consumption of
// bytes and ops, operations larger than the bucket, reconfiguration at
// runtime, and the timer that brings throttled work back. No sleeps: time
// moves only when a test advances the clock.
#include "devices/rate_limiter.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <map>
#include <random>

#include "devices/rate_limiter_timer.h"
#include "support/epoll_registrar.h"
#include "support/limiter_timer.h"
#include "support/manual_clock.h"

namespace rv::test {
namespace {

constexpr uint64_t kMs = 1'000'000;

RateLimiterConfig bandwidth(uint64_t size, uint64_t refill_ms, uint64_t burst = 0) {
    return RateLimiterConfig{.bandwidth = TokenBucketConfig{size, burst, refill_ms}};
}
RateLimiterConfig ops(uint64_t size, uint64_t refill_ms, uint64_t burst = 0) {
    return RateLimiterConfig{.ops = TokenBucketConfig{size, burst, refill_ms}};
}

class RateLimiterTest : public testing::Test {
  protected:
    RateLimiter make(std::optional<RateLimiterConfig> config) {
        return RateLimiter(config, clock.function());
    }
    ManualNsClock clock;
};

TEST_F(RateLimiterTest, WithoutBucketsNothingIsLimitedAndTheClockIsNeverRead) {
    int reads = 0;
    auto counting = [&] {
        ++reads;
        return clock();
    };
    for (const auto& config :
         {std::optional<RateLimiterConfig>{}, std::optional<RateLimiterConfig>{RateLimiterConfig{}},
          std::optional{bandwidth(0, 1000)}, std::optional{ops(10, 0)}}) {
        RateLimiter limiter(config, counting);
        EXPECT_TRUE(limiter.unlimited());
        for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.consume(1 << 30, 1));
        EXPECT_EQ(limiter.ns_until_available(~0ull, ~0ull), 0u);
        EXPECT_EQ(limiter.throttled(), 0u);
        EXPECT_FALSE(limiter.config());
    }
    EXPECT_EQ(reads, 0);
}

TEST_F(RateLimiterTest, StartsFullAndRefillsContinuously) {
    RateLimiter limiter = make(bandwidth(1000, 1000));  // 1 token per ms
    EXPECT_TRUE(limiter.consume(1000, 1));
    EXPECT_FALSE(limiter.consume(1, 1));
    EXPECT_EQ(limiter.throttled(), 1u);
    EXPECT_EQ(limiter.ns_until_available(1, 1), 1 * kMs);
    EXPECT_EQ(limiter.ns_until_available(250, 1), 250 * kMs);

    clock.advance_ms(500);
    EXPECT_FALSE(limiter.consume(501, 1));  // refused whole: nothing taken
    EXPECT_TRUE(limiter.consume(500, 1));
    EXPECT_FALSE(limiter.consume(1, 1));

    // Never more than the bucket holds, however long it waited.
    clock.advance_ms(60'000);
    EXPECT_EQ(limiter.ns_until_available(1000, 1), 0u);
    EXPECT_TRUE(limiter.consume(1000, 1));
    EXPECT_FALSE(limiter.consume(1, 1));
}

// 1000 tokens per 3 s is one per 3 ms: stepping the clock 1 ms at a time
// loses nothing to rounding, and the wait is exact.
TEST_F(RateLimiterTest, FractionsOfATokenAreCarried) {
    RateLimiter limiter = make(bandwidth(1000, 3000));
    ASSERT_TRUE(limiter.consume(1000, 0));
    EXPECT_EQ(limiter.ns_until_available(1, 0), 3 * kMs);
    uint64_t taken = 0;
    for (int ms = 0; ms < 3000; ++ms) {
        clock.advance_ms(1);
        while (limiter.consume(1, 0)) ++taken;
    }
    EXPECT_EQ(taken, 1000u);
    // 1 token is 3 ms; 1 ms after the last one the next is 2 ms away.
    clock.advance_ms(1);
    EXPECT_EQ(limiter.ns_until_available(1, 0), 2 * kMs);
}

TEST_F(RateLimiterTest, OneTimeBurstComesFirstAndNeverRefills) {
    RateLimiter limiter = make(bandwidth(100, 1000, 50));
    EXPECT_TRUE(limiter.consume(30, 0));  // from the burst
    EXPECT_EQ(limiter.bandwidth().burst(), 20u);
    EXPECT_EQ(limiter.bandwidth().budget(), 100);
    EXPECT_TRUE(limiter.consume(120, 0));  // the rest of the burst, then the bucket
    EXPECT_EQ(limiter.bandwidth().burst(), 0u);
    EXPECT_EQ(limiter.bandwidth().budget(), 0);
    EXPECT_FALSE(limiter.consume(1, 0));
    clock.advance_ms(10'000);
    EXPECT_TRUE(limiter.consume(100, 0));
    EXPECT_FALSE(limiter.consume(1, 0));
    EXPECT_EQ(limiter.bandwidth().burst(), 0u);
}

TEST_F(RateLimiterTest, BytesAndOpsAreTakenTogetherOrNotAtAll) {
    RateLimiter limiter = make(RateLimiterConfig{.bandwidth = TokenBucketConfig{1000, 0, 1000},
                                                 .ops = TokenBucketConfig{2, 0, 1000}});
    EXPECT_TRUE(limiter.consume(100, 1));
    EXPECT_TRUE(limiter.consume(100, 1));
    // Bandwidth would allow it, ops do not: bandwidth keeps its tokens.
    EXPECT_FALSE(limiter.consume(100, 1));
    EXPECT_EQ(limiter.bandwidth().budget(), 800);
    EXPECT_EQ(limiter.ns_until_available(100, 1), 500 * kMs);  // one op per 500 ms
    // Ops would allow it later, bandwidth decides.
    EXPECT_EQ(limiter.ns_until_available(900, 1), 500 * kMs);
    clock.advance_ms(500);
    EXPECT_EQ(limiter.ns_until_available(900, 1), 0u);  // 800 + 500 refilled, capped at 1000
    EXPECT_TRUE(limiter.consume(900, 1));
    EXPECT_EQ(limiter.ns_until_available(200, 1), 500 * kMs);  // bytes in 100 ms, the op in 500
}

TEST_F(RateLimiterTest, OpsBucketCountsRequests) {
    RateLimiter limiter = make(ops(10, 1000));
    int passed = 0;
    for (int i = 0; i < 100; ++i) passed += limiter.consume(1 << 20, 1);
    EXPECT_EQ(passed, 10);
    EXPECT_EQ(limiter.throttled(), 90u);
    clock.advance_ms(300);
    passed = 0;
    for (int i = 0; i < 100; ++i) passed += limiter.consume(0, 1);
    EXPECT_EQ(passed, 3);
}

// An operation larger than the bucket goes through once the bucket is full
// and leaves it in debt by the excess.
TEST_F(RateLimiterTest, LargerThanTheBucketWaitsForAFullBucketThenOwes) {
    RateLimiter limiter = make(bandwidth(1000, 1000));
    ASSERT_TRUE(limiter.consume(300, 0));
    EXPECT_FALSE(limiter.consume(2500, 0));
    EXPECT_EQ(limiter.ns_until_available(2500, 0), 300 * kMs);  // until full, not 2.5 s
    clock.advance_ms(300);
    EXPECT_TRUE(limiter.consume(2500, 0));
    EXPECT_EQ(limiter.bandwidth().budget(), -1500);
    EXPECT_FALSE(limiter.consume(1, 0));
    EXPECT_EQ(limiter.ns_until_available(1, 0), 1501 * kMs);  // the debt, then one token
    EXPECT_EQ(limiter.ns_until_available(2500, 0), 2500 * kMs);
    clock.advance_ms(2500);
    EXPECT_TRUE(limiter.consume(2500, 0));

    // A stream of them keeps to the rate: in 10 s at 1000/s, at most
    // size + 10000 tokens' worth (plus the one in flight's excess).
    RateLimiter stream = make(bandwidth(1000, 1000));
    uint64_t moved = 0;
    for (int ms = 0; ms <= 10'000; ++ms) {
        if (stream.consume(2500, 0)) moved += 2500;
        clock.advance_ms(1);
    }
    EXPECT_LE(moved, 1000u + 10'000u + 1500u);
    EXPECT_GE(moved, 10'000u);
}

TEST_F(RateLimiterTest, NeverMoreThanSizePlusBurstPlusRateTimesElapsed) {
    std::mt19937_64 rng(42);
    const uint64_t size = 64 << 10, burst = 16 << 10, refill_ms = 100;  // 640 KiB/s
    RateLimiter limiter = make(bandwidth(size, refill_ms, burst));
    const uint64_t start = clock.now();
    uint64_t moved = 0;
    for (int step = 0; step < 20'000; ++step) {
        uint64_t bytes = rng() % size + 1;
        if (limiter.consume(bytes, 1)) {
            moved += bytes;
        } else {
            uint64_t wait = limiter.ns_until_available(bytes, 1);
            ASSERT_GT(wait, 0u);
            // Waiting as told is always enough, and never more than needed.
            clock.advance_ns(wait - 1);
            ASSERT_FALSE(limiter.consume(bytes, 1));
            clock.advance_ns(1);
            ASSERT_TRUE(limiter.consume(bytes, 1));
            moved += bytes;
        }
        clock.advance_ns(rng() % (2 * kMs));
        const uint64_t elapsed = clock.now() - start;
        const unsigned __int128 allowed =
            (unsigned __int128)elapsed * size / (refill_ms * kMs) + size + burst;
        ASSERT_LE(moved, allowed) << "step " << step;
    }
}

TEST_F(RateLimiterTest, ReconfigureTakesEffectAtOnce) {
    RateLimiter limiter = make(bandwidth(1000, 1000));
    ASSERT_TRUE(limiter.consume(1000, 0));
    ASSERT_FALSE(limiter.consume(1, 0));

    // Up: a new bucket starts full, with its burst.
    limiter.reconfigure(bandwidth(10'000, 1000, 500));
    EXPECT_TRUE(limiter.consume(10'500, 0));
    EXPECT_FALSE(limiter.consume(1, 0));
    EXPECT_EQ(limiter.ns_until_available(1000, 0), 100 * kMs);  // 10 tokens per ms

    // The same limits again change nothing: no free refill.
    limiter.reconfigure(bandwidth(10'000, 1000, 500));
    EXPECT_FALSE(limiter.consume(1, 0));

    // Down: the smaller bucket and its slower rate apply from now.
    limiter.reconfigure(bandwidth(100, 1000));
    EXPECT_TRUE(limiter.consume(100, 0));
    EXPECT_FALSE(limiter.consume(1, 0));
    EXPECT_EQ(limiter.ns_until_available(100, 0), 1000 * kMs);

    // Adding an ops bucket leaves the bandwidth bucket as it was.
    limiter.reconfigure(RateLimiterConfig{.bandwidth = TokenBucketConfig{100, 0, 1000},
                                          .ops = TokenBucketConfig{5, 0, 1000}});
    EXPECT_FALSE(limiter.consume(1, 1));
    EXPECT_EQ(limiter.config(), (RateLimiterConfig{.bandwidth = TokenBucketConfig{100, 0, 1000},
                                                   .ops = TokenBucketConfig{5, 0, 1000}}));

    // Unlimited: everything goes, and the count of refusals is kept.
    const uint64_t throttled = limiter.throttled();
    EXPECT_GT(throttled, 0u);
    limiter.reconfigure(std::nullopt);
    EXPECT_TRUE(limiter.unlimited());
    EXPECT_TRUE(limiter.consume(1 << 30, 1000));
    EXPECT_EQ(limiter.ns_until_available(1 << 30, 1000), 0u);
    EXPECT_EQ(limiter.throttled(), throttled);

    // And back to limited: fresh buckets.
    limiter.reconfigure(ops(1, 1000));
    EXPECT_TRUE(limiter.consume(1 << 30, 1));
    EXPECT_FALSE(limiter.consume(0, 1));
}

// Tokens for an operation that did not happen after all come back, up to
// the bucket's size.
TEST_F(RateLimiterTest, RefundGivesTokensBack) {
    RateLimiter limiter = make(RateLimiterConfig{.bandwidth = TokenBucketConfig{1000, 0, 1000},
                                                 .ops = TokenBucketConfig{1, 0, 1000}});
    ASSERT_TRUE(limiter.consume(600, 1));
    EXPECT_FALSE(limiter.consume(100, 1));
    limiter.refund(600, 1);
    EXPECT_TRUE(limiter.consume(1000, 1));
    limiter.refund(5000, 5);  // never past the size
    EXPECT_EQ(limiter.bandwidth().budget(), 1000);
    EXPECT_EQ(limiter.ops().budget(), 1);
    RateLimiter unlimited = make(std::nullopt);
    unlimited.refund(1, 1);
    EXPECT_TRUE(unlimited.unlimited());
}

// Huge configured values neither overflow nor wrap: waits saturate.
TEST_F(RateLimiterTest, ExtremeValuesStayInRange) {
    RateLimiter limiter = make(bandwidth(~0ull, ~0ull, ~0ull));
    EXPECT_TRUE(limiter.consume(~0ull, 0));  // the burst
    EXPECT_TRUE(limiter.consume(1ull << 62, 0));
    EXPECT_FALSE(limiter.consume(1, 0));
    EXPECT_GT(limiter.ns_until_available(~0ull, 0), 0u);
    clock.advance_ns(~0ull / 2);
    (void)limiter.consume(~0ull, 0);
    RateLimiter tiny = make(bandwidth(1, 1));
    EXPECT_TRUE(tiny.consume(~0ull, 0));  // oversize, from a full bucket: deep debt
    EXPECT_FALSE(tiny.consume(1, 0));
    EXPECT_GT(tiny.ns_until_available(1, 0), 0u);
}

// ---- LimiterTimer --------------------------------------------------------------

TEST_F(RateLimiterTest, TimerArmsForTheWaitAndFiresTheCallback) {
    EpollRegistrar events;
    LimiterTimer timer;
    EXPECT_EQ(timer.fd(), -1);
    int fired = 0;
    ASSERT_TRUE(timer.attach(events, [&] { ++fired; }));
    ASSERT_TRUE(timer.attach(events, [&] { fired += 100; }));  // once only
    ASSERT_EQ(events.handlers.size(), 1u);
    ASSERT_TRUE(events.handlers.contains(timer.fd()));

    RateLimiter limiter = make(bandwidth(1000, 1000));
    EXPECT_TRUE(timer.admit(limiter, 1000, 1));
    EXPECT_FALSE(armed_timer_ns(timer.fd()));  // passing work arms nothing
    EXPECT_FALSE(timer.admit(limiter, 400, 1));
    auto left = take_armed_timer(timer.fd());
    ASSERT_TRUE(left);
    EXPECT_GT(*left, 0u);
    EXPECT_LE(*left, 400 * kMs);
    EXPECT_GT(*left, 300 * kMs);  // (the real clock moved a little since)

    events.handlers.at(timer.fd())(EPOLLIN);
    EXPECT_EQ(fired, 1);
    timer.arm(0);  // "at once"
    EXPECT_TRUE(armed_timer_ns(timer.fd()) || fd_readable(timer.fd()));

    const int fd = timer.fd();
    timer.detach();
    EXPECT_FALSE(timer.attached());
    EXPECT_FALSE(events.handlers.contains(fd));
    timer.arm(5);  // harmless when detached
}

TEST_F(RateLimiterTest, UnlimitedAdmitNeedsNoTimer) {
    LimiterTimer timer;  // never attached
    RateLimiter limiter = make(std::nullopt);
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(timer.admit(limiter, 1 << 20, 1));
    EXPECT_FALSE(timer.attached());
}

}  // namespace
}  // namespace rv::test
