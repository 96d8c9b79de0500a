// virtio-rng under a rate limiter on a manual clock: the guest gets at most
// size + rate * elapsed bytes, a refused request goes back to the ring until
// the limiter timer fires, lifting the limit releases the rest at once, ops
// count requests, and a request larger than the bucket gets through.
#include <gtest/gtest.h>

#include "devices/virtio/rng/rng_device.h"
#include "support/device_counters.h"
#include "support/fake_driver_queue.h"
#include "support/limiter_timer.h"
#include "support/manual_clock.h"
#include "test_fakes.h"

namespace rv::virtio {
namespace {

using test::FakeDriverQueue;

constexpr uint64_t kMs = 1'000'000;
constexpr uint32_t kRequest = 1024;

class RngRateLimitTest : public ::testing::Test {
  protected:
    void start(std::optional<RateLimiterConfig> limiter) {
        rng = std::make_unique<VirtioRng>(VirtioRng::EntropySource{}, limiter, clock.function());
        std::vector<Queue> queues;
        auto queue = q.create_queue(VirtioRng::kQueueSize, false, true);
        ASSERT_TRUE(queue) << queue.error().message();
        queues.push_back(std::move(*queue));
        auto r = rng->activate(
            ActivateArgs{memory, interrupt, std::move(queues), rng->device_features(), events});
        ASSERT_TRUE(r) << r.error().message();
    }
    void publish(int n, uint32_t len = kRequest) {
        for (int i = 0; i < n; ++i) q.add_chain({{len, true}});
    }
    // Answered requests, each of which must be full.
    size_t answered(uint32_t len = kRequest) {
        size_t n = 0;
        while (auto used = q.pop_used()) {
            EXPECT_EQ(used->len, len);
            ++n;
        }
        return n;
    }
    // A notify, then the device's own continuations (a pass stops after
    // kMaxBytesPerNotify and kicks itself), as the event loop would run them.
    // Not the limiter timer: it counts real time, the limiter manual time, so
    // the test fires it (a slow run would otherwise see it expire here).
    void notify() {
        if (rng->rate_limiter_timer_fd() >= 0) events.hold(rng->rate_limiter_timer_fd());
        rng->queue_notify(0);
        for (int i = 0; i < 100 && events.run_ready() > 0; ++i) {
        }
    }
    void expect_timer(uint64_t within_ns) {
        auto left = test::take_armed_timer(rng->rate_limiter_timer_fd());
        ASSERT_TRUE(left) << "no limiter timer armed";
        EXPECT_LE(*left, within_ns);
    }
    void fire() { ASSERT_TRUE(events.fire(rng->rate_limiter_timer_fd())); }

    GuestMemory memory = test::make_test_memory(4 << 20);
    FakeDriverQueue q{memory, 64};
    std::shared_ptr<test::RecordingInterrupt> interrupt =
        std::make_shared<test::RecordingInterrupt>();
    test::FakeEventRegistrar events;  // before rng: it unregisters on destruction
    test::ManualNsClock clock;
    std::unique_ptr<VirtioRng> rng;
};

TEST_F(RngRateLimitTest, BytesAreLimitedAndResumeFromTheTimer) {
    // About 1 MiB/s: a 16 KiB bucket that refills in 16 ms (1 KiB per ms).
    start(RateLimiterConfig{.bandwidth = TokenBucketConfig{16 << 10, 0, 16}});
    publish(32);
    notify();
    EXPECT_EQ(answered(), 16u);
    expect_timer(1 * kMs);
    notify();  // a notify while throttled does nothing
    EXPECT_EQ(answered(), 0u);
    EXPECT_EQ(rng->stats().throttled, 1u);

    clock.advance_ms(4);  // 4 KiB more
    fire();
    EXPECT_EQ(answered(), 4u);
    EXPECT_EQ(rng->stats().bytes, 20u * kRequest);
    EXPECT_LE(rng->stats().bytes, (16u << 10) + 4u * 1024);
    (void)test::take_armed_timer(rng->rate_limiter_timer_fd());
    EXPECT_EQ(rng->stats().throttled_us, 4000u) << "held since the refusal, still held";

    clock.advance_ms(1);
    ASSERT_TRUE(rng->set_rate_limiter(std::nullopt));
    expect_timer(kMs);  // at once
    fire();
    EXPECT_EQ(answered(), 12u);
    clock.advance_ms(10);  // nothing held: not counted
    EXPECT_EQ(rng->stats().throttled_us, 5000u);
    EXPECT_EQ(test::counter(rng->counters(), "throttled_us"), 5000u);
    EXPECT_EQ(test::counter(rng->counters(), "throttled"), 2u);
    EXPECT_EQ(test::counter(rng->counters(), "rate_limited"), 0u);
}

TEST_F(RngRateLimitTest, OpsLimitTheNumberOfRequests) {
    start(RateLimiterConfig{.ops = TokenBucketConfig{2, 0, 1000}});
    publish(5, 16);
    notify();
    EXPECT_EQ(answered(16), 2u);
    expect_timer(500 * kMs);
    clock.advance_ms(1000);
    fire();
    EXPECT_EQ(answered(16), 2u);
}

TEST_F(RngRateLimitTest, RequestLargerThanTheBucketGetsThrough) {
    start(RateLimiterConfig{.bandwidth = TokenBucketConfig{16 << 10, 0, 1000}});
    publish(1, VirtioRng::kMaxBytesPerRequest);  // 64 KiB from a 16 KiB bucket
    publish(1, 1024);
    notify();
    auto first = q.pop_used();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->len, VirtioRng::kMaxBytesPerRequest);
    EXPECT_FALSE(q.pop_used());
    // The 48 KiB debt and 1 KiB more, at 16 KiB/s.
    expect_timer(3063 * kMs);
    clock.advance_ms(3063);
    fire();
    EXPECT_EQ(answered(1024), 1u);
}

TEST_F(RngRateLimitTest, WithoutALimiterNoTimerExists) {
    start(std::nullopt);
    publish(32, 4096);
    notify();
    EXPECT_EQ(answered(4096), 32u);
    EXPECT_EQ(rng->rate_limiter_timer_fd(), -1);
    EXPECT_EQ(events.registered(), 1u);  // the kick only
    // A limit set at runtime gets its timer; reset takes it off the loop.
    ASSERT_TRUE(rng->set_rate_limiter(RateLimiterConfig{.ops = TokenBucketConfig{1, 0, 1000}}));
    EXPECT_EQ(events.registered(), 2u);
    publish(2, 16);
    notify();
    EXPECT_EQ(answered(16), 1u);
    rng->reset();
    EXPECT_EQ(events.registered(), 0u);
}

}  // namespace
}  // namespace rv::virtio
