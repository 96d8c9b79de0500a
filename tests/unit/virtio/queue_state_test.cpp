// A queue's position saved and given to a queue made afresh over the same
// rings: it takes the chain after the last one the original took, and its
// used elements go where the original's would have.
#include <gtest/gtest.h>

#include "devices/virtio/queue.h"
#include "snapshot/state_codec.h"
#include "support/fake_driver_queue.h"

namespace rv::virtio {
namespace {

using test::FakeDriverQueue;
using test::make_test_memory;

TEST(QueueState, RestoredQueueGoesOnWhereTheOriginalStopped) {
    GuestMemory mem = make_test_memory();
    FakeDriverQueue driver(mem, 8);
    Queue a = *driver.create_queue(256, false, false);
    const uint16_t h1 = driver.add_chain({{"one", false}, {8, true}});
    const uint16_t h2 = driver.add_chain({{"two", false}, {8, true}});
    const uint16_t h3 = driver.add_chain({{"three", false}, {8, true}});
    ASSERT_EQ((*a.pop(mem))->head, h1);
    ASSERT_EQ((*a.pop(mem))->head, h2);
    ASSERT_TRUE(a.add_used(mem, h1, 3));
    ASSERT_TRUE(a.needs_notification(mem).has_value());

    const auto saved = a.save();
    EXPECT_EQ(saved.next_avail, 2);
    EXPECT_EQ(saved.next_used, 1);
    EXPECT_TRUE(saved.signalled_valid);
    const auto back = snapshot::decode<Queue::State>(snapshot::encode(saved), "queue").value();
    EXPECT_EQ(back, saved);

    Queue b = *driver.create_queue(256, false, false);
    b.restore(back);
    EXPECT_EQ(b.save(), saved);
    auto next = b.pop(mem);
    ASSERT_TRUE(next && *next);
    EXPECT_EQ((*next)->head, h3) << "the chains the original took are not taken again";
    ASSERT_TRUE(b.add_used(mem, h2, 5));  // completes what the original had in flight
    EXPECT_EQ(driver.used_idx(), 2);
    EXPECT_EQ(driver.pop_used(), (test::UsedElem{h1, 3}));
    EXPECT_EQ(driver.pop_used(), (test::UsedElem{h2, 5}));
    // Nothing was signalled for h2 yet: the restored queue still owes it.
    EXPECT_TRUE(*b.needs_notification(mem));
    EXPECT_FALSE(*b.needs_notification(mem));
}

TEST(QueueState, TruncatedOrBadBooleanIsRefused) {
    auto bytes = snapshot::encode(Queue::State{1, 2, 3, true});
    bytes.back() = 2;
    EXPECT_FALSE(snapshot::decode<Queue::State>(bytes, "queue").has_value());
    bytes.pop_back();
    EXPECT_FALSE(snapshot::decode<Queue::State>(bytes, "queue").has_value());
}

}  // namespace
}  // namespace rv::virtio
