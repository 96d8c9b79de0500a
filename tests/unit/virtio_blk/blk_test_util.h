// A virtio-blk device over a temp image, activated on a FakeDriverQueue,
// with a fake event registrar and an interrupt that counts signals.
#pragma once

#include <gtest/gtest.h>
#include <sys/epoll.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>

#include "devices/virtio/blk/blk_device.h"
#include "support/epoll_registrar.h"
#include "support/fake_driver_queue.h"
#include "unit/backends/block_test_util.h"

namespace rv::test {

class CountingInterrupt final : public virtio::Interrupt {
  public:
    void signal_used_queue(uint16_t queue) override {
        EXPECT_EQ(queue, 0);
        ++used;
    }
    void signal_config_change() override { ++config; }
    int used{0};
    int config{0};
};

using FakeRegistrar = EpollRegistrar;

inline std::vector<uint8_t> blk_header(uint32_t type, uint64_t sector) {
    virtio::blk::BlkReqHeader h{type, 0, sector};
    std::vector<uint8_t> out(sizeof(h));
    std::memcpy(out.data(), &h, sizeof(h));
    return out;
}

inline std::vector<uint8_t> blk_segments(
    std::initializer_list<virtio::blk::BlkDiscardSegment> segs) {
    std::vector<uint8_t> out;
    for (const auto& s : segs) {
        const auto* p = reinterpret_cast<const uint8_t*>(&s);
        out.insert(out.end(), p, p + sizeof(s));
    }
    return out;
}

inline std::vector<uint8_t> concat(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    std::vector<uint8_t> out;
    out.reserve(a.size() + b.size());
    for (uint8_t x : a) out.push_back(x);
    for (uint8_t x : b) out.push_back(x);
    return out;
}

class BlkTest : public testing::Test {
  protected:
    static constexpr uint64_t kImageSize = 1 << 20;  // 2048 sectors

    // Opens the image, creates and activates the device with every offered
    // feature (minus `drop`).
    void start(BlockOptions options = {.engine = BlockOptions::Engine::Sync}, uint64_t drop = 0,
               bool event_idx = true) {
        start_on(m_image.path(), options, drop, event_idx);
    }
    // The same over another image (e.g. one larger than m_image).
    void start_on(const std::string& path,
                  BlockOptions options = {.engine = BlockOptions::Engine::Sync}, uint64_t drop = 0,
                  bool event_idx = true) {
        auto backend = BlockBackend::open(path, options);
        ASSERT_TRUE(backend) << backend.error().message();
        m_dev = std::make_unique<virtio::VirtioBlk>(std::move(*backend), "rv-test-serial");
        activate(drop, event_idx);
    }
    void activate(uint64_t drop = 0, bool event_idx = true) {
        uint64_t features = m_dev->device_features() & ~drop;
        if (!event_idx) features &= ~virtio::kFRingEventIdx;
        auto queue = m_driver.create_queue(virtio::VirtioBlk::kQueueSize, event_idx, true);
        ASSERT_TRUE(queue) << queue.error().message();
        std::vector<virtio::Queue> queues;
        queues.push_back(std::move(*queue));
        auto r = m_dev->activate({m_memory, m_irq, std::move(queues), features, m_events});
        ASSERT_TRUE(r) << r.error().message();
    }

    // Kick, then deliver completions the way the event loop would, until the
    // device is idle.
    void run() {
        m_dev->queue_notify(0);
        finish();
    }
    void finish() {
        for (int i = 0; i < 1000 && !m_dev->idle(); ++i) {
            ASSERT_FALSE(m_events.handlers.empty());
            ASSERT_GT(pump_events(5000), 0) << "no completion";
        }
        ASSERT_TRUE(m_dev->idle());
    }
    // One event-loop turn (waiting up to `timeout_ms` for an event); returns
    // how many handlers ran.
    int pump_events(int timeout_ms = 0) { return m_events.turn(timeout_ms); }
    // The status byte of a completed chain (the last writable byte).
    uint8_t status_of(uint16_t head, UsedElem used) {
        auto bytes = m_driver.writable_data(head);
        EXPECT_EQ(used.len, bytes.size());
        return bytes.empty() ? 0xff : bytes.back();
    }
    // Pops the next completion, which must be for `head`; returns its status.
    uint8_t next_status(uint16_t head) {
        auto used = m_driver.pop_used();
        if (!used) {
            ADD_FAILURE() << "no completion for head " << head;
            return 0xff;
        }
        EXPECT_EQ(used->id, head);
        return status_of(head, *used);
    }

    TempImage m_image{kImageSize};
    GuestMemory m_memory = make_test_memory(4 << 20);
    FakeDriverQueue m_driver{m_memory, 64};
    std::shared_ptr<CountingInterrupt> m_irq = std::make_shared<CountingInterrupt>();
    FakeRegistrar m_events;
    std::unique_ptr<virtio::VirtioBlk> m_dev;
};

}  // namespace rv::test
