// Notification suppression both ways (2.7.7, 2.7.10): device -> driver
// interrupts (needs_notification) and driver -> device kicks
// (enable/disable_notification), with and without VIRTIO_F_EVENT_IDX.
#include <gtest/gtest.h>

#include "devices/virtio/queue.h"
#include "support/fake_driver_queue.h"

namespace rv::virtio {
namespace {

using test::FakeDriverQueue;
using test::make_test_memory;

struct NeedEventCase {
    uint16_t event, new_idx, old_idx;
    bool expected;
};

TEST(NeedEvent, Table) {
    // Notify iff event_idx lies in [old, new), all modulo 2^16.
    const NeedEventCase cases[] = {
        {0, 1, 0, true},           // first completion, driver wants it
        {0, 0, 0, false},          // nothing new
        {1, 1, 0, false},          // driver wants to hear after entry 1 is used
        {1, 2, 0, true},           // batch [0,2) passed event 1
        {1, 2, 1, true},           // exactly the event entry
        {5, 4, 0, false},          // event beyond new
        {3, 10, 4, false},         // event behind old: already signalled
        {9, 10, 4, true},          // last of the batch
        {10, 10, 4, false},        // one past the batch
        {65535, 0, 65535, true},   // wrap: batch {65535}
        {65535, 2, 65530, true},   // wrap: batch 65530..1 contains 65535
        {0, 2, 65530, true},       // wrap: contains 0
        {1, 2, 65530, true},       // wrap: contains 1 (new-1)
        {2, 2, 65530, false},      // wrap: 2 not yet used
        {65529, 2, 65530, false},  // wrap: just before old
        {100, 65535, 65534, false},
        {65534, 65535, 65534, true},
    };
    for (const auto& c : cases)
        EXPECT_EQ(Queue::need_event(c.event, c.new_idx, c.old_idx), c.expected)
            << "event " << c.event << " new " << c.new_idx << " old " << c.old_idx;
}

class QueueNotify : public ::testing::TestWithParam<bool> {
  protected:
    GuestMemory m_mem = make_test_memory();
    FakeDriverQueue m_driver{m_mem, 16};
    Queue m_queue = *m_driver.create_queue(256, GetParam(), false);

    void complete(int n) {
        for (int i = 0; i < n; ++i) {
            uint16_t head = m_driver.add_chain({{1, true}});
            auto r = m_queue.pop(m_mem);
            ASSERT_TRUE(r && *r);
            ASSERT_TRUE(m_queue.add_used(m_mem, head, 1));
            m_driver.pop_used();
        }
    }
    bool needs() {
        auto r = m_queue.needs_notification(m_mem);
        EXPECT_TRUE(r);
        return r.value_or(false);
    }
};

TEST_P(QueueNotify, NothingNewNeedsNoInterrupt) {
    complete(1);
    EXPECT_TRUE(needs());
    EXPECT_FALSE(needs());  // same used idx as last decision
}

TEST_P(QueueNotify, UnpublishedUsedEntriesAppearTogether) {
    uint16_t a = m_driver.add_chain({{1, true}});
    uint16_t b = m_driver.add_chain({{1, true}});
    ASSERT_TRUE(m_queue.pop(m_mem).value());
    ASSERT_TRUE(m_queue.pop(m_mem).value());
    ASSERT_TRUE(m_queue.add_used_unpublished(m_mem, a, 1));
    EXPECT_EQ(m_driver.used_idx(), 0);  // the driver sees nothing yet
    ASSERT_TRUE(m_queue.add_used_unpublished(m_mem, b, 1));
    EXPECT_EQ(m_driver.used_idx(), 0);
    ASSERT_TRUE(m_queue.publish_used(m_mem));
    EXPECT_EQ(m_driver.used_idx(), 2);
    EXPECT_EQ(m_driver.pop_used()->id, a);
    EXPECT_EQ(m_driver.pop_used()->id, b);
    EXPECT_TRUE(needs());
}

TEST_P(QueueNotify, EnableReportsBuffersThatArrived) {
    ASSERT_TRUE(m_queue.disable_notification(m_mem));
    auto none = m_queue.enable_notification(m_mem);
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);
    ASSERT_TRUE(m_queue.disable_notification(m_mem));
    m_driver.add_chain({{1, true}});
    auto some = m_queue.enable_notification(m_mem);
    ASSERT_TRUE(some);
    EXPECT_TRUE(*some);
    ASSERT_TRUE(m_queue.pop(m_mem).value().has_value());
    EXPECT_FALSE(m_queue.enable_notification(m_mem).value());
}

INSTANTIATE_TEST_SUITE_P(EventIdx, QueueNotify, ::testing::Bool(), [](const auto& param_info) {
    return param_info.param ? "EventIdx" : "Flags";
});

class QueueNotifyFlags : public ::testing::Test {
  protected:
    GuestMemory m_mem = make_test_memory();
    FakeDriverQueue m_driver{m_mem, 16};
    Queue m_queue = *m_driver.create_queue(256, false, false);

    void complete_one() {
        uint16_t head = m_driver.add_chain({{1, true}});
        ASSERT_TRUE(m_queue.pop(m_mem).value().has_value());
        ASSERT_TRUE(m_queue.add_used(m_mem, head, 1));
        m_driver.pop_used();
    }
};

TEST_F(QueueNotifyFlags, InterruptUnlessNoInterruptFlag) {
    complete_one();
    EXPECT_TRUE(m_queue.needs_notification(m_mem).value());
    m_driver.set_avail_flags(kAvailFNoInterrupt);
    complete_one();
    EXPECT_FALSE(m_queue.needs_notification(m_mem).value());
    m_driver.set_avail_flags(0);
    complete_one();
    EXPECT_TRUE(m_queue.needs_notification(m_mem).value());
}

TEST_F(QueueNotifyFlags, UsedEventIgnoredWithoutEventIdx) {
    m_driver.set_used_event(100);
    complete_one();
    EXPECT_TRUE(m_queue.needs_notification(m_mem).value());
}

TEST_F(QueueNotifyFlags, DisableSetsNoNotifyEnableClearsIt) {
    EXPECT_EQ(m_driver.used_flags(), 0);
    ASSERT_TRUE(m_queue.disable_notification(m_mem));
    EXPECT_EQ(m_driver.used_flags(), kUsedFNoNotify);
    ASSERT_TRUE(m_queue.enable_notification(m_mem));
    EXPECT_EQ(m_driver.used_flags(), 0);
    // avail_event is not touched in this mode.
    EXPECT_EQ(m_driver.avail_event(), 0);
}

class QueueNotifyEventIdx : public ::testing::Test {
  protected:
    GuestMemory m_mem = make_test_memory();
    FakeDriverQueue m_driver{m_mem, 16};
    Queue m_queue = *m_driver.create_queue(256, true, false);

    void complete(int n) {
        for (int i = 0; i < n; ++i) {
            uint16_t head = m_driver.add_chain({{1, true}});
            ASSERT_TRUE(m_queue.pop(m_mem).value().has_value());
            ASSERT_TRUE(m_queue.add_used(m_mem, head, 1));
            m_driver.pop_used();
        }
    }
    bool needs() { return m_queue.needs_notification(m_mem).value(); }
};

TEST_F(QueueNotifyEventIdx, FirstDecisionAlwaysNotifies) {
    m_driver.set_used_event(1000);  // far away
    complete(1);
    EXPECT_TRUE(needs());
}

TEST_F(QueueNotifyEventIdx, FollowsUsedEvent) {
    complete(1);
    ASSERT_TRUE(needs());  // used idx 1 signalled
    // Driver: "interrupt me once entry 3 is used" (i.e. used idx passes 3).
    m_driver.set_used_event(3);
    complete(1);  // used idx 2: entry 1 used
    EXPECT_FALSE(needs());
    complete(1);  // used idx 3: entry 2 used
    EXPECT_FALSE(needs());
    complete(1);  // used idx 4: entry 3 used
    EXPECT_TRUE(needs());
    // A batch that jumps over the event still notifies.
    m_driver.set_used_event(5);
    complete(3);  // used idx 4 -> 7 covers entry 5
    EXPECT_TRUE(needs());
    // The NO_INTERRUPT flag is ignored when EVENT_IDX is negotiated.
    m_driver.set_avail_flags(kAvailFNoInterrupt);
    m_driver.set_used_event(7);
    complete(1);
    EXPECT_TRUE(needs());
}

TEST_F(QueueNotifyEventIdx, UsedEventAcrossWrap) {
    // Drive used idx to 65534 with decisions along the way.
    for (int i = 0; i < 65534; ++i) {
        complete(1);
        m_driver.set_used_event(static_cast<uint16_t>(m_queue.next_used()));
        needs();
    }
    ASSERT_EQ(m_queue.next_used(), 65534);
    m_driver.set_used_event(0);  // wants the interrupt when entry 0 (after wrap) is used
    complete(1);                 // 65535
    EXPECT_FALSE(needs());
    complete(1);  // used idx 0: entry 65535 used
    EXPECT_FALSE(needs());
    complete(1);  // used idx 1: entry 0 used
    EXPECT_TRUE(needs());
}

TEST_F(QueueNotifyEventIdx, ManyCompletionsWithoutDecisionForceNotify) {
    complete(1);
    ASSERT_TRUE(needs());
    m_driver.set_used_event(0);
    // 65536 completions without asking: used idx is back where it was
    // signalled, and need_event alone would say "nothing new".
    complete(65536);
    EXPECT_TRUE(needs());
}

TEST_F(QueueNotifyEventIdx, EnableWritesAvailEvent) {
    complete(3);
    ASSERT_TRUE(m_queue.enable_notification(m_mem));
    EXPECT_EQ(m_driver.avail_event(), 3);
    // Disabling leaves avail_event behind, so the driver stops kicking.
    ASSERT_TRUE(m_queue.disable_notification(m_mem));
    EXPECT_EQ(m_driver.avail_event(), 3);
    EXPECT_EQ(m_driver.used_flags(), 0);
    complete(2);
    auto arrived = m_queue.enable_notification(m_mem);
    ASSERT_TRUE(arrived);
    EXPECT_FALSE(*arrived);
    EXPECT_EQ(m_driver.avail_event(), 5);
}

}  // namespace
}  // namespace rv::virtio
