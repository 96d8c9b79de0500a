#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "devices/virtio/console/console_device.h"
#include "support/fake_driver_queue.h"
#include "test_fakes.h"

namespace rv::virtio {
namespace {

using test::BufferSpec;
using test::FakeDriverQueue;
using test::UsedElem;

std::span<const uint8_t> bytes_of(std::string_view s) {
    return std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

class ConsoleTest : public ::testing::Test {
  protected:
    void activate(bool event_idx = false) {
        std::vector<Queue> queues;
        for (auto* q : {&rx, &tx}) {
            auto queue = q->create_queue(VirtioConsole::kQueueSize, event_idx, true);
            ASSERT_TRUE(queue) << queue.error().message();
            queues.push_back(std::move(*queue));
        }
        auto result = console.activate(
            ActivateArgs{memory, interrupt, std::move(queues), console.device_features(), events});
        ASSERT_TRUE(result) << result.error().message();
    }
    void input(std::string_view text) { console.enqueue_input(bytes_of(text)); }
    uint16_t post_rx(uint32_t len) { return rx.add_chain({{len, true}}); }

    GuestMemory memory = test::make_test_memory(1 << 20);
    FakeDriverQueue rx{memory, FakeDriverQueue::packed_layout(16, GuestAddress(0x1000)),
                       GuestAddress(0x10000), 0x30000};
    FakeDriverQueue tx{memory, FakeDriverQueue::packed_layout(16, GuestAddress(0x2000)),
                       GuestAddress(0x40000), 0xb0000};
    std::shared_ptr<test::RecordingInterrupt> interrupt =
        std::make_shared<test::RecordingInterrupt>();
    test::FakeEventRegistrar events;
    std::string output;
    size_t sink_calls = 0;
    VirtioConsole console{[this](std::span<const uint8_t> b) {
        output.append(b.begin(), b.end());
        ++sink_calls;
    }};
};

TEST_F(ConsoleTest, IdentityAndFeatures) {
    EXPECT_EQ(console.device_type(), 3u);
    uint64_t f = console.device_features();
    EXPECT_TRUE(f & kConsoleFSize);
    EXPECT_FALSE(f & kConsoleFMultiport);
    EXPECT_TRUE(f & kFVersion1);
    EXPECT_TRUE(f & kFRingEventIdx);
    EXPECT_TRUE(f & kFRingIndirectDesc);
    EXPECT_EQ(console.queue_max_sizes(), (std::vector<uint16_t>{256, 256}));
}

TEST_F(ConsoleTest, ConfigReadsSize) {
    VirtioConsole sized({}, 132, 43);
    uint8_t cfg[12];
    sized.read_config(0, cfg);
    EXPECT_EQ(cfg[0] | cfg[1] << 8, 132);
    EXPECT_EQ(cfg[2] | cfg[3] << 8, 43);
    uint8_t rows[2];
    sized.read_config(2, rows);
    EXPECT_EQ(rows[0], 43);
    EXPECT_EQ(rows[1], 0);
    // Default size, and out-of-range bytes read as zero, even at huge offsets.
    uint8_t tail[4] = {0xff, 0xff, 0xff, 0xff};
    console.read_config(10, tail);
    EXPECT_EQ(tail[2], 0);
    EXPECT_EQ(tail[3], 0);
    uint8_t far[2] = {0xff, 0xff};
    console.read_config(~0ull - 1, far);
    EXPECT_EQ(far[0], 0);
    EXPECT_EQ(far[1], 0);
    uint8_t def[4];
    console.read_config(0, def);
    EXPECT_EQ(def[0], 80);
    EXPECT_EQ(def[2], 25);
    // Writes to the read-only size are ignored.
    const uint8_t junk[2] = {1, 2};
    console.write_config(0, junk);
    console.read_config(0, def);
    EXPECT_EQ(def[0], 80);
}

TEST_F(ConsoleTest, ResizeRaisesConfigChangeOnceActive) {
    console.set_size(100, 30);  // not active: no interrupt, but the value sticks
    EXPECT_EQ(interrupt->config_changes(), 0u);
    activate();
    console.set_size(120, 40);
    EXPECT_EQ(interrupt->config_changes(), 1u);
    console.set_size(120, 40);  // unchanged: no interrupt
    EXPECT_EQ(interrupt->config_changes(), 1u);
    uint8_t cfg[4];
    console.read_config(0, cfg);
    EXPECT_EQ(cfg[0], 120);
    EXPECT_EQ(cfg[2], 40);
}

TEST_F(ConsoleTest, TransmitMultiBufferChainToSink) {
    activate();
    uint16_t head = tx.add_chain({{"hello, "}, {"virtio "}, {"world\n"}});
    console.queue_notify(VirtioConsole::kTransmitQueue);
    EXPECT_EQ(output, "hello, virtio world\n");
    EXPECT_EQ(tx.pop_used(), (UsedElem{head, 0}));
    EXPECT_EQ(interrupt->used_count(1), 1u);
    EXPECT_EQ(console.stats().tx_bytes, 20u);
}

TEST_F(ConsoleTest, TransmitIndirectAndSeveralChainsInOrder) {
    activate();
    uint16_t a = tx.add_chain({{"one "}});
    uint16_t b = tx.add_indirect_chain({{"two "}, {"three "}});
    uint16_t c = tx.add_chain({{"four"}});
    console.queue_notify(VirtioConsole::kTransmitQueue);
    EXPECT_EQ(output, "one two three four");
    EXPECT_EQ(tx.pop_used(), (UsedElem{a, 0}));
    EXPECT_EQ(tx.pop_used(), (UsedElem{b, 0}));
    EXPECT_EQ(tx.pop_used(), (UsedElem{c, 0}));
    EXPECT_EQ(console.stats().tx_chains, 3u);
}

TEST_F(ConsoleTest, TransmitChainWithoutReadableBytesIsReturnedEmpty) {
    activate();
    uint16_t head = tx.add_chain({{64, true}});
    uint16_t next = tx.add_chain({{"ok"}});
    console.queue_notify(VirtioConsole::kTransmitQueue);
    EXPECT_EQ(tx.pop_used(), (UsedElem{head, 0}));
    EXPECT_EQ(tx.pop_used(), (UsedElem{next, 0}));
    EXPECT_EQ(output, "ok");
    EXPECT_EQ(console.stats().malformed_chains, 1u);
    EXPECT_FALSE(console.needs_reset());
}

TEST_F(ConsoleTest, OversizedTransmitChainIsTruncated) {
    activate();
    std::vector<uint8_t> big(VirtioConsole::kMaxTxChainBytes + 1000, 'x');
    tx.add_chain({{big}});
    console.queue_notify(VirtioConsole::kTransmitQueue);
    EXPECT_EQ(output.size(), VirtioConsole::kMaxTxChainBytes);
    EXPECT_EQ(console.stats().tx_truncated_bytes, 1000u);
    EXPECT_TRUE(tx.pop_used());
}

TEST_F(ConsoleTest, TransmitBudgetReschedulesLeftoverChains) {
    activate();
    std::vector<uint8_t> chunk(40 * 1024, 'y');
    for (int i = 0; i < 8; ++i) tx.add_chain({{chunk}});  // 320 KiB > one pass's budget
    console.queue_notify(VirtioConsole::kTransmitQueue);
    EXPECT_LT(output.size(), 8 * chunk.size());
    EXPECT_GE(output.size(), VirtioConsole::kTxBudgetPerNotify);
    // The rest comes on the next event-loop pass, without another notify.
    EXPECT_EQ(events.run_ready(), 1u);
    EXPECT_EQ(output.size(), 8 * chunk.size());
    size_t used = 0;
    while (tx.pop_used()) ++used;
    EXPECT_EQ(used, 8u);
}

TEST_F(ConsoleTest, InputBeforeBuffersIsDeliveredAfterNotify) {
    input("early");  // before activation
    activate();
    input(" bird");  // active, but no receive buffers yet
    EXPECT_EQ(console.stats().input_buffered, 10u);
    EXPECT_EQ(rx.used_idx(), 0);
    uint16_t head = post_rx(64);
    console.queue_notify(VirtioConsole::kReceiveQueue);
    auto used = rx.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, head);
    EXPECT_EQ(used->len, 10u);
    EXPECT_EQ(rx.writable_string(head, used->len), "early bird");
    EXPECT_EQ(interrupt->used_count(0), 1u);
    EXPECT_EQ(console.stats().input_buffered, 0u);
}

TEST_F(ConsoleTest, BuffersPostedBeforeDriverOkAreUsedOnActivate) {
    uint16_t head = post_rx(16);
    input("hi");
    activate();
    auto used = rx.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(rx.writable_string(head, used->len), "hi");
}

TEST_F(ConsoleTest, InputWithBuffersAvailableIsDeliveredImmediately) {
    activate();
    uint16_t head = post_rx(32);
    input("ls\n");
    auto used = rx.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(rx.writable_string(head, used->len), "ls\n");
}

TEST_F(ConsoleTest, InputSplitAcrossSmallChains) {
    activate();
    uint16_t a = post_rx(4);
    uint16_t b = rx.add_chain({{2, true}, {2, true}});
    uint16_t c = post_rx(4);
    uint16_t d = post_rx(4);
    input("abcdefghij");
    EXPECT_EQ(rx.pop_used(), (UsedElem{a, 4}));
    EXPECT_EQ(rx.pop_used(), (UsedElem{b, 4}));
    EXPECT_EQ(rx.pop_used(), (UsedElem{c, 2}));
    EXPECT_FALSE(rx.pop_used());  // d stays with the device for later input
    EXPECT_EQ(rx.writable_string(a), "abcd");
    EXPECT_EQ(rx.writable_string(b), "efgh");
    EXPECT_EQ(rx.writable_string(c, 2), "ij");
    input("k");
    EXPECT_EQ(rx.pop_used(), (UsedElem{d, 1}));
    EXPECT_EQ(rx.writable_string(d, 1), "k");
}

TEST_F(ConsoleTest, InputLargerThanBuffersWaitsForMore) {
    activate();
    post_rx(3);
    input("123456");
    EXPECT_TRUE(rx.pop_used());
    EXPECT_EQ(console.stats().input_buffered, 3u);
    uint16_t head = post_rx(8);
    console.queue_notify(VirtioConsole::kReceiveQueue);
    auto used = rx.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(rx.writable_string(head, used->len), "456");
}

TEST_F(ConsoleTest, CapacityBackpressureAndSpaceCallback) {
    int callbacks = 0;
    console.set_input_space_callback([&] { ++callbacks; });
    EXPECT_EQ(console.input_capacity(), VirtioConsole::kInputBufferSize);
    activate();
    std::string fill(VirtioConsole::kInputBufferSize - 1, 'f');
    input(fill);
    EXPECT_EQ(console.input_capacity(), 1u);
    EXPECT_TRUE(console.input_space());
    input("!?");  // one byte fits, one is dropped (the caller ignored capacity)
    EXPECT_EQ(console.input_capacity(), 0u);
    EXPECT_FALSE(console.input_space());
    EXPECT_EQ(console.stats().input_dropped, 1u);
    EXPECT_EQ(callbacks, 0);
    post_rx(100);
    console.queue_notify(VirtioConsole::kReceiveQueue);
    EXPECT_EQ(callbacks, 1);
    EXPECT_EQ(console.input_capacity(), 100u);
    post_rx(100);  // more room, but nobody was waiting any more
    console.queue_notify(VirtioConsole::kReceiveQueue);
    EXPECT_EQ(callbacks, 1);
}

TEST_F(ConsoleTest, FillingTheRingWhileBuffersExistStillCallsBack) {
    // The VMM pauses its input whenever it had more than input_capacity();
    // the device must then call back even if the guest drained the ring
    // inside the same enqueue_input().
    int callbacks = 0;
    console.set_input_space_callback([&] { ++callbacks; });
    activate();
    post_rx(64);
    std::string fill(console.input_capacity(), 'z');
    input(fill);
    EXPECT_EQ(callbacks, 1);
    EXPECT_EQ(console.input_capacity(), VirtioConsole::kInputBufferSize - fill.size() + 64);
}

TEST_F(ConsoleTest, SinkMayEnqueueInput) {
    VirtioConsole echo([&](std::span<const uint8_t> b) { echo.enqueue_input(b); });
    std::vector<Queue> queues;
    for (auto* q : {&rx, &tx}) queues.push_back(*q->create_queue(256, false, true));
    ASSERT_TRUE(echo.activate(ActivateArgs{memory, interrupt, std::move(queues), 0, events}));
    uint16_t head = post_rx(16);
    tx.add_chain({{"echo"}});
    echo.queue_notify(VirtioConsole::kTransmitQueue);
    auto used = rx.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(rx.writable_string(head, used->len), "echo");
}

TEST_F(ConsoleTest, EventIdxAsksForTheNextKick) {
    activate(/*event_idx=*/true);
    tx.add_chain({{"a"}});
    tx.add_chain({{"b"}});
    console.queue_notify(VirtioConsole::kTransmitQueue);
    EXPECT_EQ(output, "ab");
    EXPECT_EQ(tx.avail_event(), 2);  // the driver kicks when it publishes entry 2
}

TEST_F(ConsoleTest, ResetDropsQueuesKeepsInput) {
    activate();
    EXPECT_EQ(events.registered(), 1u);
    input("kept");
    console.reset();
    EXPECT_EQ(events.registered(), 0u);
    post_rx(16);
    tx.add_chain({{"ignored"}});
    console.queue_notify(VirtioConsole::kReceiveQueue);
    console.queue_notify(VirtioConsole::kTransmitQueue);
    EXPECT_EQ(rx.used_idx(), 0);
    EXPECT_EQ(tx.used_idx(), 0);
    EXPECT_EQ(output, "");
    EXPECT_EQ(console.stats().input_buffered, 4u);
}

TEST_F(ConsoleTest, ResetThenReactivateWorks) {
    activate();
    console.reset();
    FakeDriverQueue rx2{memory, FakeDriverQueue::packed_layout(16, GuestAddress(0x3000)),
                        GuestAddress(0xf0000), 0x8000};
    FakeDriverQueue tx2{memory, FakeDriverQueue::packed_layout(16, GuestAddress(0x4000)),
                        GuestAddress(0xf8000), 0x8000};
    std::vector<Queue> queues;
    queues.push_back(*rx2.create_queue(256, false, true));
    queues.push_back(*tx2.create_queue(256, false, true));
    ASSERT_TRUE(console.activate(ActivateArgs{memory, interrupt, std::move(queues), 0, events}));
    EXPECT_EQ(events.registered(), 1u);
    uint16_t head = rx2.add_chain({{8, true}});
    input("again");
    EXPECT_EQ(rx2.pop_used(), (UsedElem{head, 5}));
}

TEST_F(ConsoleTest, WrongQueueCountFailsActivation) {
    std::vector<Queue> queues;
    queues.push_back(*rx.create_queue(256, false, true));
    EXPECT_FALSE(console.activate(ActivateArgs{memory, interrupt, std::move(queues), 0, events}));
    EXPECT_EQ(events.registered(), 0u);
}

TEST_F(ConsoleTest, MalformedRingNeedsReset) {
    activate();
    tx.set_avail_idx(100);  // moved by more than the queue size
    console.queue_notify(VirtioConsole::kTransmitQueue);
    EXPECT_TRUE(console.needs_reset());
    EXPECT_EQ(interrupt->config_changes(), 1u);
    EXPECT_EQ(console.stats().queue_errors, 1u);
    // Ignored until reset; input is still buffered, not lost.
    post_rx(16);
    input("wait");
    EXPECT_EQ(rx.used_idx(), 0);
    console.queue_notify(VirtioConsole::kTransmitQueue);
    EXPECT_EQ(console.stats().queue_errors, 1u);
    console.reset();
    EXPECT_FALSE(console.needs_reset());
}

TEST_F(ConsoleTest, OutOfRangeHeadNeedsReset) {
    activate();
    rx.publish_raw(200);
    input("x");
    EXPECT_TRUE(console.needs_reset());
    console.queue_notify(7);  // no such queue: ignored, not a crash
}

}  // namespace
}  // namespace rv::virtio
