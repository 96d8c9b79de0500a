// The IDE disk under a rate limiter on a manual clock: a read or write
// command (DMA or PIO) costs its bytes and one op, charged when it starts; a
// refused command keeps the drive BSY (no DRQ, no interrupt, no disk I/O)
// and starts from the channel's limiter timer once the clock has moved.
// Lifting the limit releases it at once; SRST abandons it; a command larger
// than the bucket gets through from a full bucket. Both disks of a channel
// in one rate limit group share its bucket.
#include "devices/rate_limit_group.h"
#include "ide_test_util.h"
#include "support/device_counters.h"
#include "support/limiter_timer.h"
#include "support/manual_clock.h"

namespace rv::test {
namespace {

using namespace ata;
using ide::kBmCmdStart;
using ide::kBmCmdToMemory;
using ide::kBmCommand;
using ide::kBmStatusInterrupt;
using ide::kPrdEndOfTable;

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kTable = 0x1000;
constexpr uint64_t kBuffer = 0x100000;

// About 1 MiB/s: a 64 KiB bucket that refills in 64 ms (1 KiB per ms).
RateLimiterConfig mib_per_second() {
    return RateLimiterConfig{.bandwidth = TokenBucketConfig{64 << 10, 0, 64}};
}

class IdeRateLimitTest : public IdeTest {
  protected:
    // Drive 0 (4 MiB) with `limiter`, drive 1 without; both in `group` if
    // there is one; bus mastering on.
    void start_limited(std::optional<RateLimiterConfig> limiter,
                       std::shared_ptr<RateLimitGroup> group = nullptr) {
        std::array<std::optional<IdeDrive>, 4> drives;
        for (unsigned i = 0; i < 2; ++i) {
            images[i].emplace(4 << 20);
            auto backend =
                BlockBackend::open(images[i]->path(), {.engine = BlockOptions::Engine::Sync});
            ASSERT_TRUE(backend) << backend.error().message();
            drives[i] = IdeDrive{std::move(*backend), fmt::format("SERIAL-{}", i),
                                 i == 0 ? limiter : std::nullopt, group};
        }
        auto ide =
            PiixIde::create(memory, std::move(drives), irq[0], irq[1], events, clock.function());
        ASSERT_TRUE(ide) << ide.error().message();
        dev = std::move(*ide);
        enable_bus_master();
    }
    // A DMA read of `sectors` into kBuffer, issued the libata way (command,
    // then start); returns once the device has done what it can.
    void dma_read(uint64_t lba, uint16_t sectors) {
        write_prd(kTable, {{static_cast<uint32_t>(kBuffer), static_cast<uint16_t>(sectors * 512),
                            kPrdEndOfTable}});
        bm_set_prd(kTable);
        bm_write8(kBmCommand, kBmCmdToMemory);
        lba28(static_cast<uint32_t>(lba), static_cast<uint8_t>(sectors));
        command(cmd::kReadDma);
        bm_write8(kBmCommand, kBmCmdToMemory | kBmCmdStart);
        events.pump();
    }
    // The driver's end of a finished DMA command.
    void end_dma() {
        EXPECT_EQ(status(), kStatusReady);
        EXPECT_TRUE(bm_status() & kBmStatusInterrupt);
        bm_write8(kBmCommand, 0);
        bm_write8(ide::kBmStatus, kBmStatusInterrupt);
    }
    void expect_timer(uint64_t within_ns) {
        auto left = take_armed_timer(dev->limiter_timer_fd(0));
        ASSERT_TRUE(left) << "no limiter timer armed";
        EXPECT_LE(*left, within_ns);
    }
    void fire() {
        events.handlers.at(dev->limiter_timer_fd(0))(EPOLLIN);
        events.pump();
    }

    ManualNsClock clock;
};

TEST_F(IdeRateLimitTest, DmaCommandsMoveAtMostBucketPlusRateTimesElapsed) {
    start_limited(mib_per_second());
    for (int i = 0; i < 2; ++i) {  // 2 x 32 KiB: the bucket
        images[0]->write(uint64_t(i) * 64 * 512, pattern(64 * 512, uint8_t(i)));
        dma_read(uint64_t(i) * 64, 64);
        end_dma();
        EXPECT_EQ(guest_bytes(kBuffer, 64 * 512), pattern(64 * 512, uint8_t(i)));
    }
    images[0]->write(128 * 512, pattern(64 * 512, 7));
    irq[0]->clear_history();
    dma_read(128, 64);
    // Held: busy, no data, no interrupt, until the timer.
    EXPECT_EQ(alt_status(), kStatusBsy);
    EXPECT_FALSE(irq[0]->level());
    const auto previous = pattern(64 * 512, 1);
    EXPECT_EQ(guest_bytes(kBuffer, 16),
              std::vector<uint8_t>(previous.begin(), previous.begin() + 16));
    EXPECT_EQ(test::counter(dev->counters(), "channel0_rate_limited"), 1u);
    expect_timer(32 * kMs);  // 32 KiB at 1 KiB/ms

    // A command while busy is ignored, not queued.
    command(cmd::kFlushCache);
    EXPECT_EQ(alt_status(), kStatusBsy);

    clock.advance_ms(32);
    fire();
    EXPECT_TRUE(irq[0]->level());
    end_dma();
    EXPECT_EQ(guest_bytes(kBuffer, 64 * 512), pattern(64 * 512, 7));
    EXPECT_EQ(test::counter(dev->counters(), "drive0_throttled"), 1u);
    EXPECT_EQ(test::counter(dev->counters(), "throttled"), 1u);
    EXPECT_EQ(test::counter(dev->counters(), "channel0_rate_limited"), 0u);
}

TEST_F(IdeRateLimitTest, PioReadIsDelayedThenCompletes) {
    start_limited(mib_per_second());
    select(0);
    lba28(0, 128);  // 64 KiB: the whole bucket
    command(cmd::kReadSectors);
    EXPECT_EQ(pio_in(128).size(), 128u * 512);
    images[0]->write(200 * 512, pattern(8 * 512, 3));
    lba28(200, 8);
    command(cmd::kReadSectors);
    events.pump();
    EXPECT_EQ(alt_status(), kStatusBsy);
    expect_timer(4 * kMs);
    clock.advance_ms(4);
    fire();
    EXPECT_EQ(pio_in(8), pattern(8 * 512, 3));
    EXPECT_EQ(status(), kStatusReady);
}

TEST_F(IdeRateLimitTest, PioWriteWaitsBeforeAskingForData) {
    start_limited(RateLimiterConfig{.ops = TokenBucketConfig{1, 0, 1000}});
    select(0);
    lba28(10, 1);
    command(cmd::kWriteSectors);
    pio_out(pattern(512, 1));
    lba28(11, 1);
    command(cmd::kWriteSectors);
    EXPECT_EQ(alt_status(), kStatusBsy);  // no DRQ yet: the guest cannot write
    write_data(pattern(512, 2));          // ignored while busy
    expect_timer(1000 * kMs);
    clock.advance_ms(1000);
    fire();
    EXPECT_TRUE(alt_status() & kStatusDrq);
    pio_out(pattern(512, 2));
    EXPECT_EQ(status(), kStatusReady);
    EXPECT_EQ(images[0]->read(10 * 512, 512), pattern(512, 1));
    EXPECT_EQ(images[0]->read(11 * 512, 512), pattern(512, 2));
}

TEST_F(IdeRateLimitTest, LiftingTheLimitReleasesAHeldCommandAtOnce) {
    start_limited(RateLimiterConfig{.ops = TokenBucketConfig{1, 0, 60'000}});
    dma_read(0, 8);
    end_dma();
    dma_read(8, 8);
    EXPECT_EQ(alt_status(), kStatusBsy);
    (void)take_armed_timer(dev->limiter_timer_fd(0));
    ASSERT_TRUE(dev->set_rate_limiter(0, std::nullopt));
    expect_timer(kMs);  // at once, on the event loop; the clock has not moved
    fire();
    end_dma();
    // And nothing waits any more.
    dma_read(16, 8);
    end_dma();
    EXPECT_FALSE(take_armed_timer(dev->limiter_timer_fd(0)));
}

TEST_F(IdeRateLimitTest, CommandLargerThanTheBucketGetsThrough) {
    start_limited(RateLimiterConfig{.bandwidth = TokenBucketConfig{16 << 10, 0, 1000}});
    select(0);
    lba28(0, 0);  // 256 sectors: 128 KiB from a 16 KiB bucket
    command(cmd::kReadSectors);
    EXPECT_EQ(pio_in(256).size(), 256u * 512);
    lba28(0, 2);
    command(cmd::kReadSectors);
    EXPECT_EQ(alt_status(), kStatusBsy);
    // The 112 KiB debt and 1 KiB more, at 16 KiB/s: 7.0625 s.
    expect_timer(7063 * kMs);
    clock.advance_ms(7063);
    fire();
    EXPECT_EQ(pio_in(2).size(), 1024u);
}

TEST_F(IdeRateLimitTest, SoftResetAbandonsAHeldCommand) {
    start_limited(RateLimiterConfig{.ops = TokenBucketConfig{1, 0, 1000}});
    dma_read(0, 8);
    end_dma();
    dma_read(8, 8);
    EXPECT_EQ(alt_status(), kStatusBsy);
    write8(ctl(), 0, kCtlSrst);
    write8(ctl(), 0, 0);
    EXPECT_EQ(alt_status(), kStatusReady);
    EXPECT_FALSE(take_armed_timer(dev->limiter_timer_fd(0)));  // disarmed
    clock.advance_ms(5000);
    fire();  // a late wake-up finds nothing to do
    EXPECT_EQ(alt_status(), kStatusReady);
    EXPECT_FALSE(irq[0]->level());
    dma_read(16, 8);  // and the drive works
    end_dma();
}

TEST_F(IdeRateLimitTest, OnlyTheLimitedDriveWaits) {
    start_limited(RateLimiterConfig{.ops = TokenBucketConfig{1, 0, 1000}});
    select(1);
    for (int i = 0; i < 10; ++i) {
        lba28(uint32_t(i), 1, 1);
        command(cmd::kReadSectors);
        EXPECT_EQ(pio_in(1).size(), 512u);
    }
    EXPECT_EQ(test::counter(dev->counters(), "drive1_throttled"), 0u);
    // Drive 0, on the same channel, has one op per second.
    select(0);
    lba28(0, 1);
    command(cmd::kReadSectors);
    EXPECT_EQ(pio_in(1).size(), 512u);
    lba28(1, 1);
    command(cmd::kReadSectors);
    EXPECT_EQ(alt_status(), kStatusBsy);
    EXPECT_EQ(test::counter(dev->counters(), "drive0_throttled"), 1u);
}

TEST_F(IdeRateLimitTest, WithoutALimiterNoTimerExists) {
    start_limited(std::nullopt);
    EXPECT_EQ(dev->limiter_timer_fd(0), -1);
    EXPECT_EQ(events.handlers.size(), 2u);  // the completion fds only
    for (int i = 0; i < 4; ++i) {
        dma_read(uint64_t(i) * 8, 8);
        end_dma();
    }
    EXPECT_EQ(test::counter(dev->counters(), "throttled"), 0u);
    EXPECT_FALSE(dev->set_rate_limiter(2, mib_per_second()));  // no such drive
    // Set at runtime: the channel's timer is registered, and the next
    // commands are limited.
    ASSERT_TRUE(dev->set_rate_limiter(0, RateLimiterConfig{.ops = TokenBucketConfig{1, 0, 1000}}));
    EXPECT_TRUE(events.handlers.contains(dev->limiter_timer_fd(0)));
    dma_read(0, 8);
    end_dma();
    dma_read(8, 8);
    EXPECT_EQ(alt_status(), kStatusBsy);
    // Destroying the device takes the timer off the loop.
    dev.reset();
    EXPECT_TRUE(events.handlers.empty());
}

// Both disks in one group of 1 KiB per ms (the slave has no limiter of
// its own): what one reads, the other cannot, and a refused command waits
// BSY for the group's refill from the channel's timer.
TEST_F(IdeRateLimitTest, DisksInAGroupShareItsBucket) {
    auto group = RateLimitGroup::anonymous({"ide", mib_per_second()}, clock());
    ASSERT_TRUE(group) << group.error().message();
    start_limited(std::nullopt, *group);
    EXPECT_NE(dev->limiter_timer_fd(0), -1);  // a group alone needs the timer
    dma_read(0, 64);  // 32 KiB of the group's 64 KiB
    end_dma();
    select(1);
    lba28(0, 64, 1);  // the slave: the other 32 KiB
    command(cmd::kReadSectors);
    EXPECT_EQ(pio_in(64).size(), 64u * 512);
    lba28(64, 8, 1);  // and 4 KiB more: held
    command(cmd::kReadSectors);
    EXPECT_EQ(alt_status(), kStatusBsy);
    EXPECT_EQ(test::counter(dev->counters(), "drive1_throttled"), 1u);
    expect_timer(4 * kMs);
    clock.advance_ms(4);
    fire();
    EXPECT_EQ(pio_in(8).size(), 8u * 512);
    EXPECT_EQ((*group)->status().bandwidth_budget, 0);
}

}  // namespace
}  // namespace rv::test
