// virtio-blk against a driver that ignores what the device advertises or
// tries to monopolise it: requests beyond size_max / seg_max are refused
// with IOERR (and a rate-limited log line), and one notify serves a bounded
// number of chains, the rest on later event-loop turns.
#include <functional>
#include <mutex>

#include "base/log.h"
#include "blk_test_util.h"
#include "support/refilling_driver.h"

namespace rv::test {
namespace {

using namespace virtio::blk;

// Counts the warnings logged while it lives.
class WarnCounter {
  public:
    WarnCounter() {
        log::set_sink([this](log::Level level, std::string_view text) {
            std::lock_guard lock(m_mutex);
            if (level >= log::Level::Warn) m_lines.emplace_back(text);
        });
    }
    ~WarnCounter() { log::set_sink({}); }
    std::vector<std::string> lines() {
        std::lock_guard lock(m_mutex);
        return m_lines;
    }

  private:
    std::mutex m_mutex;
    std::vector<std::string> m_lines;
};

class BlkLimits : public BlkTest {
  protected:
    void SetUp() override {
        start_on(m_big.path());
        m_dev->read_config(0, std::span(reinterpret_cast<uint8_t*>(&m_cfg), sizeof(m_cfg)));
        ASSERT_TRUE(m_dev->device_features() & kFSizeMax);
        ASSERT_TRUE(m_dev->device_features() & kFSegMax);
    }
    // `count` segments of `each` bytes (device-writable for a read), indirect.
    std::vector<BufferSpec> request(uint32_t type, uint32_t count, uint32_t each) {
        std::vector<BufferSpec> chain{{blk_header(type, 8), false}};
        for (uint32_t i = 0; i < count; ++i)
            chain.emplace_back(type == kTIn ? BufferSpec(each, true)
                                            : BufferSpec(pattern(each, static_cast<uint8_t>(i))));
        chain.emplace_back(1, true);
        return chain;
    }

    TempImage m_big{8 << 20};
    BlkConfig m_cfg{};
};

TEST_F(BlkLimits, ConfigSpaceAdvertisesTheLimits) {
    EXPECT_EQ(m_cfg.size_max, 1u << 20);
    EXPECT_EQ(m_cfg.seg_max, 254u);
}

TEST_F(BlkLimits, SegmentLargerThanSizeMaxGetsIoErr) {
    uint16_t w = m_driver.add_chain(request(kTOut, 1, m_cfg.size_max + 512));
    uint16_t r = m_driver.add_chain(request(kTIn, 1, m_cfg.size_max + 512));
    run();
    EXPECT_EQ(next_status(w), kSIoErr);
    EXPECT_EQ(next_status(r), kSIoErr);
    EXPECT_EQ(m_dev->stats().submitted, 0u);  // refused before any I/O
    EXPECT_FALSE(m_dev->needs_reset());
    EXPECT_EQ(m_big.read(8 * 512, 4096), std::vector<uint8_t>(4096, 0));
}

TEST_F(BlkLimits, MoreSegmentsThanSegMaxGetsIoErr) {
    uint16_t w = m_driver.add_indirect_chain(request(kTOut, m_cfg.seg_max + 1, 512));
    uint16_t r = m_driver.add_indirect_chain(request(kTIn, m_cfg.seg_max + 1, 512));
    // The header's buffer may carry data too; it still counts as a segment.
    auto chain = request(kTOut, m_cfg.seg_max, 512);
    chain[0] = BufferSpec(concat(blk_header(kTOut, 8), pattern(512, 1)));
    uint16_t h = m_driver.add_indirect_chain(chain);
    run();
    EXPECT_EQ(next_status(w), kSIoErr);
    EXPECT_EQ(next_status(r), kSIoErr);
    EXPECT_EQ(next_status(h), kSIoErr);
    EXPECT_EQ(m_dev->stats().submitted, 0u);
    EXPECT_FALSE(m_dev->needs_reset());
}

TEST_F(BlkLimits, RequestsAtTheLimitsAreServed) {
    uint16_t big = m_driver.add_chain(request(kTOut, 1, m_cfg.size_max));
    uint16_t many = m_driver.add_indirect_chain(request(kTIn, m_cfg.seg_max, 512));
    // Data and status in one writable buffer: the data part is one segment.
    auto chain = request(kTIn, m_cfg.seg_max, 512);
    chain.pop_back();
    chain.back() = BufferSpec(513, true);
    uint16_t shared = m_driver.add_indirect_chain(chain);
    run();
    EXPECT_EQ(next_status(big), kSOk);
    EXPECT_EQ(next_status(many), kSOk);
    EXPECT_EQ(next_status(shared), kSOk);
    EXPECT_EQ(m_big.read(8 * 512, 4096), pattern(4096, 0));
}

TEST_F(BlkLimits, RefusalsAreLoggedRateLimited) {
    WarnCounter warnings;
    for (int round = 0; round < 4; ++round) {
        for (int i = 0; i < 8; ++i)
            m_driver.add_indirect_chain(request(kTOut, m_cfg.seg_max + 1, 512));
        run();
        while (auto used = m_driver.pop_used()) EXPECT_EQ(status_of(used->id, *used), kSIoErr);
    }
    auto lines = warnings.lines();
    EXPECT_GE(lines.size(), 1u) << "a refused request is worth a warning";
    EXPECT_LE(lines.size(), 6u) << "32 refusals, " << lines.size() << " lines";
    for (const auto& line : lines) EXPECT_NE(line.find("virtio-blk"), std::string::npos) << line;
}

// Requests the device answers at once, without I/O: a read past the end of
// the disk (IOERR). Parsing it logs a debug line, which the tests below use
// as a hook that runs inside the device's drain loop.
std::vector<uint16_t> publish_bad_reads(FakeDriverQueue& driver) {
    std::vector<uint16_t> heads;
    for (uint16_t i = 0; i < driver.size(); ++i)
        heads.push_back(driver.add_indirect_chain(
            {{blk_header(kTIn, 1ull << 40), false}, {512, true}, {1, true}}));
    return heads;
}

// Serves what is left after a first notify: event-loop turns (the device's
// own continuation) and the notifies the driver asked for.
void serve_the_rest(virtio::VirtioBlk& dev, RefillingDriver& driver,
                    const std::function<int()>& pump) {
    for (int turn = 0; turn < 100000; ++turn) {
        int ran = pump();
        bool kicked = driver.take_kick();
        if (kicked) dev.queue_notify(0);
        if (ran == 0 && !kicked) return;
    }
    ADD_FAILURE() << "the device never went quiet";
}

// A driver that republishes every chain as soon as it comes back would keep
// a drain-until-empty loop, and with it the event loop, busy for as long as
// it likes. Here it refills from inside the drain (the device's per-request
// debug line), so the ring is never empty: one notify must still stop after
// a bounded number of chains, and the rest must be served on later turns
// without another notify.
TEST_F(BlkTest, OneNotifyServesABoundedNumberOfChains) {
    start();
    RefillingDriver driver(m_driver, publish_bad_reads(m_driver));
    const log::Level level = log::level();
    log::set_level(log::Level::Debug);
    log::set_sink([&](log::Level, std::string_view text) {
        if (text.find("virtio-blk: request") != std::string_view::npos) driver.refill();
    });
    m_dev->queue_notify(0);
    log::set_sink({});
    log::set_level(level);
    driver.stop();
    const uint64_t first_pass = m_dev->stats().requests;
    EXPECT_LE(first_pass, 256u) << "one notify served " << first_pass << " chains";
    EXPECT_GT(driver.published(), 256u) << "the driver did not keep the ring full";

    serve_the_rest(*m_dev, driver, [this] { return pump_events(); });
    EXPECT_EQ(m_driver.used_idx(), m_driver.avail_idx()) << "chains left unserved";
    EXPECT_EQ(m_dev->stats().requests, driver.published());
    EXPECT_EQ(m_dev->stats().errors, driver.published());  // every one an IOERR
    EXPECT_FALSE(m_dev->needs_reset());
}

// The same driver on its own thread, as a vCPU would run it: however the
// two interleave, no notify serves more than the budget and nothing is lost.
TEST_F(BlkTest, ConcurrentlyRefillingDriverIsServedInBoundedPasses) {
    start();
    RefillingDriver driver(m_driver, publish_bad_reads(m_driver));
    driver.start();
    m_dev->queue_notify(0);
    const uint64_t first_pass = m_dev->stats().requests;
    driver.stop();
    EXPECT_LE(first_pass, 256u) << "one notify served " << first_pass << " chains";

    serve_the_rest(*m_dev, driver, [this] { return pump_events(); });
    EXPECT_EQ(m_driver.used_idx(), m_driver.avail_idx()) << "chains left unserved";
    EXPECT_EQ(m_dev->stats().requests, driver.published());
    EXPECT_FALSE(m_dev->needs_reset());
}

}  // namespace
}  // namespace rv::test
