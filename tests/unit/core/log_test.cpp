#include "base/log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "support/log_capture.h"

namespace rv {
namespace {

using namespace std::chrono_literals;

// A steady clock that moves only when the test says so.
struct FakeSteadyClock {
    std::chrono::steady_clock::time_point now{std::chrono::steady_clock::time_point{} + 1h};
    log::RateLimit::Clock function() {
        return [this] { return now; };
    }
};

TEST(LogSink, CapturesAndRestores) {
    {
        test::LogCapture capture;
        log::warn("hello {}", 42);
        log::debug("below the level: never formatted, never written");
        ASSERT_EQ(capture.count(), 1u);
        EXPECT_EQ(capture.lines()[0], "hello 42");
    }
    // Back on stderr: nothing captured by a capture made afterwards.
    test::LogCapture later;
    EXPECT_EQ(later.count(), 0u);
}

TEST(RateLimit, FirstBurstThenOnePerInterval) {
    FakeSteadyClock clock;
    log::RateLimit limit(3, 10s, clock.function());
    for (int i = 0; i < 3; ++i) {
        auto v = limit.admit();
        EXPECT_TRUE(v.log) << i;
        EXPECT_EQ(v.suppressed, 0u);
        EXPECT_EQ(v.last_of_burst, i == 2);
    }
    for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limit.admit().log);
    clock.now += 9s;
    EXPECT_FALSE(limit.admit().log);  // 1001 suppressed so far
    clock.now += 1s;
    auto v = limit.admit();
    EXPECT_TRUE(v.log);
    EXPECT_EQ(v.suppressed, 1001u);
    EXPECT_FALSE(v.last_of_burst);
    // The interval counts from the last logged event.
    clock.now += 5s;
    EXPECT_FALSE(limit.admit().log);
    clock.now += 5s;
    v = limit.admit();
    EXPECT_TRUE(v.log);
    EXPECT_EQ(v.suppressed, 1u);
    EXPECT_EQ(limit.events(), 3u + 1000 + 1 + 1 + 1 + 1);
    EXPECT_EQ(limit.suppressed_total(), 1002u);
}

TEST(RateLimit, QuietPeriodLogsAgainWithoutSuppressedCount) {
    FakeSteadyClock clock;
    log::RateLimit limit(1, 1s, clock.function());
    EXPECT_TRUE(limit.admit().log);
    clock.now += 1h;
    auto v = limit.admit();
    EXPECT_TRUE(v.log);
    EXPECT_EQ(v.suppressed, 0u);
}

TEST(RateLimit, WarnLimitedSaysWhatWasLeftOut) {
    FakeSteadyClock clock;
    log::RateLimit limit(2, 10s, clock.function());
    test::LogCapture capture;
    for (int i = 0; i < 10'000; ++i) log::warn_limited(limit, "bad write {}", i);
    clock.now += 10s;
    log::warn_limited(limit, "bad write {}", 10'000);
    auto lines = capture.lines();
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0], "bad write 0");
    EXPECT_EQ(lines[1], "bad write 1 (repeats logged at most once per 10 s from now on)");
    EXPECT_EQ(lines[2], "bad write 10000 (9998 more like this not logged)");
}

TEST(RateLimit, ThreadsShareOneBudget) {
    FakeSteadyClock clock;
    log::RateLimit limit(5, 10s, clock.function());
    std::atomic<int> logged{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 2'500; ++i) logged += limit.admit().log;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(logged.load(), 5);
    EXPECT_EQ(limit.suppressed_total(), 10'000u - 5);
}

}  // namespace
}  // namespace rv
