#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "devices/virtio/rng/rng_device.h"
#include "support/fake_driver_queue.h"
#include "test_fakes.h"

namespace rv::virtio {
namespace {

using test::FakeDriverQueue;
using test::UsedElem;

bool all_zero(const std::vector<uint8_t>& v) {
    return std::all_of(v.begin(), v.end(), [](uint8_t b) { return b == 0; });
}

class RngTest : public ::testing::Test {
  protected:
    void activate(VirtioRng& device) {
        std::vector<Queue> queues;
        auto queue = q.create_queue(VirtioRng::kQueueSize, false, true);
        ASSERT_TRUE(queue) << queue.error().message();
        queues.push_back(std::move(*queue));
        auto result = device.activate(
            ActivateArgs{memory, interrupt, std::move(queues), device.device_features(), events});
        ASSERT_TRUE(result) << result.error().message();
    }
    void activate() { activate(rng); }

    GuestMemory memory = test::make_test_memory(1 << 20);
    FakeDriverQueue q{memory, 16};
    std::shared_ptr<test::RecordingInterrupt> interrupt =
        std::make_shared<test::RecordingInterrupt>();
    test::FakeEventRegistrar events;
    VirtioRng rng;
};

TEST_F(RngTest, Identity) {
    EXPECT_EQ(rng.device_type(), 4u);
    EXPECT_EQ(rng.queue_max_sizes().size(), 1u);
    EXPECT_TRUE(rng.device_features() & kFVersion1);
    uint8_t cfg[4] = {1, 2, 3, 4};
    rng.read_config(0, cfg);
    EXPECT_EQ(cfg[0] | cfg[1] | cfg[2] | cfg[3], 0);
}

TEST_F(RngTest, FillsWritableBufferWithFreshRandomBytes) {
    activate();
    uint16_t a = q.add_chain({{64, true}});
    rng.queue_notify(0);
    uint16_t b = q.add_chain({{64, true}});
    rng.queue_notify(0);
    EXPECT_EQ(q.pop_used(), (UsedElem{a, 64}));
    EXPECT_EQ(q.pop_used(), (UsedElem{b, 64}));
    auto first = q.writable_data(a);
    auto second = q.writable_data(b);
    EXPECT_FALSE(all_zero(first));
    EXPECT_NE(first, second);
    // Random-looking: 64 random bytes have many distinct values.
    EXPECT_GT(std::set<uint8_t>(first.begin(), first.end()).size(), 20u);
    EXPECT_EQ(interrupt->used_count(0), 2u);
    EXPECT_EQ(rng.stats().bytes, 128u);
}

TEST_F(RngTest, ScatteredAndIndirectBuffersRespectSizes) {
    activate();
    // A readable prefix is left alone; only writable bytes are counted.
    uint16_t a = q.add_chain({{"keep"}, {16, true}, {48, true}});
    uint16_t b = q.add_indirect_chain({{7, true}, {9, true}});
    rng.queue_notify(0);
    EXPECT_EQ(q.pop_used(), (UsedElem{a, 64}));
    EXPECT_EQ(q.pop_used(), (UsedElem{b, 16}));
    auto prefix = q.buffer_data(a, 0);
    EXPECT_EQ(std::string(prefix.begin(), prefix.end()), "keep");
    EXPECT_FALSE(all_zero(q.buffer_data(a, 2)));
}

TEST_F(RngTest, ChainWithoutWritableBytesGetsZero) {
    activate();
    uint16_t head = q.add_chain({{"only readable"}});
    rng.queue_notify(0);
    EXPECT_EQ(q.pop_used(), (UsedElem{head, 0}));
    EXPECT_EQ(rng.stats().empty_requests, 1u);
    EXPECT_FALSE(rng.needs_reset());
}

TEST_F(RngTest, LargeRequestIsCapped) {
    activate();
    uint16_t head = q.add_chain({{100 * 1024, true}});
    rng.queue_notify(0);
    auto used = q.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, head);
    EXPECT_EQ(used->len, VirtioRng::kMaxBytesPerRequest);
    // Bytes past the reported length were not touched.
    auto tail = q.writable_data(head);
    tail.erase(tail.begin(), tail.begin() + VirtioRng::kMaxBytesPerRequest);
    EXPECT_TRUE(all_zero(tail));
}

TEST_F(RngTest, NotifyBudgetReschedulesTheRest) {
    activate();
    for (int i = 0; i < 3; ++i) q.add_chain({{64 * 1024, true}});
    rng.queue_notify(0);
    EXPECT_EQ(q.used_idx(), 1);
    EXPECT_EQ(events.run_ready(), 1u);
    EXPECT_EQ(q.used_idx(), 2);
    EXPECT_EQ(events.run_ready(), 1u);
    EXPECT_EQ(q.used_idx(), 3);
}

TEST_F(RngTest, SourceFailureAndShortReads) {
    int calls = 0;
    VirtioRng flaky([&](std::span<uint8_t> out) -> Result<size_t> {
        if (++calls == 1) return make_error("no entropy today");
        std::fill(out.begin(), out.end(), uint8_t{0xab});
        return std::min<size_t>(out.size(), 5);
    });
    activate(flaky);
    uint16_t a = q.add_chain({{32, true}});
    uint16_t b = q.add_chain({{32, true}});
    flaky.queue_notify(0);
    EXPECT_EQ(q.pop_used(), (UsedElem{a, 0}));
    EXPECT_EQ(q.pop_used(), (UsedElem{b, 5}));
    EXPECT_EQ(q.writable_data(b, 5), std::vector<uint8_t>(5, 0xab));
    EXPECT_EQ(flaky.stats().source_errors, 1u);
    EXPECT_FALSE(flaky.needs_reset());
}

TEST_F(RngTest, SourceOverreportingIsClamped) {
    VirtioRng liar([](std::span<uint8_t> out) -> Result<size_t> {
        std::fill(out.begin(), out.end(), uint8_t{1});
        return out.size() + 1000;
    });
    activate(liar);
    uint16_t head = q.add_chain({{16, true}});
    liar.queue_notify(0);
    EXPECT_EQ(q.pop_used(), (UsedElem{head, 16}));
}

TEST_F(RngTest, HostEntropyFillsLargeBuffers) {
    std::vector<uint8_t> a(1 << 20), b(1 << 20);
    auto na = VirtioRng::host_entropy(a);
    auto nb = VirtioRng::host_entropy(b);
    ASSERT_TRUE(na && nb);
    EXPECT_EQ(*na, a.size());
    EXPECT_EQ(*nb, b.size());
    EXPECT_NE(a, b);
}

TEST_F(RngTest, MalformedRingNeedsReset) {
    activate();
    uint16_t head = q.build_chain({{16, true}});
    q.set_desc(head, {0xffff'ffff'0000ull, 16, kDescFWrite, 0});  // outside guest memory
    q.publish(head);
    rng.queue_notify(0);
    EXPECT_TRUE(rng.needs_reset());
    EXPECT_EQ(interrupt->config_changes(), 1u);
    rng.reset();
    EXPECT_FALSE(rng.needs_reset());
}

TEST_F(RngTest, ResetDropsQueue) {
    activate();
    EXPECT_EQ(events.registered(), 1u);
    rng.reset();
    EXPECT_EQ(events.registered(), 0u);
    q.add_chain({{16, true}});
    rng.queue_notify(0);
    EXPECT_EQ(q.used_idx(), 0);
}

TEST_F(RngTest, RequestsPostedBeforeDriverOkAreServedOnActivate) {
    uint16_t head = q.add_chain({{8, true}});
    activate();
    EXPECT_EQ(q.pop_used(), (UsedElem{head, 8}));
}

}  // namespace
}  // namespace rv::virtio
