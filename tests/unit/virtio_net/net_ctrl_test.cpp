// The control queue of a multiqueue virtio-net: VQ_PAIRS_SET in range is OK,
// out of range or of the wrong size is ERR, so is every class we do not
// offer; hostile chains (short, oversized, split oddly, no ack byte, broken
// descriptors) neither crash nor hang the device.
#include "support/device_counters.h"
#include "unit/virtio_net/net_mq_fixture.h"

namespace rv::test {
namespace {

using namespace virtio;

class NetCtrlTest : public NetMqTest {
  protected:
    void SetUp() override { activate(); }
    int ack(std::vector<BufferSpec> chain) {
        auto reply = send_ctrl(std::move(chain));
        if (!reply.used || reply.written.size() != 1) return -1;
        return reply.written[0];
    }
};

TEST_F(NetCtrlTest, PairsSetOutsideOneToNIsErr) {
    EXPECT_EQ(set_pairs(0), kNetCtrlErr);
    EXPECT_EQ(set_pairs(3), kNetCtrlErr);
    EXPECT_EQ(set_pairs(0x8000), kNetCtrlErr);
    EXPECT_EQ(set_pairs(0xffff), kNetCtrlErr);
    EXPECT_EQ(dev->active_pairs(), 1u);
    EXPECT_FALSE(nets[1]->attached);
    EXPECT_EQ(set_pairs(2), kNetCtrlOk);
    EXPECT_EQ(dev->active_pairs(), 2u);
    EXPECT_EQ(set_pairs(2), kNetCtrlOk) << "setting the current count again is fine";
    EXPECT_EQ(set_pairs(1), kNetCtrlOk);
    EXPECT_EQ(dev->active_pairs(), 1u);
    EXPECT_EQ(dev->stats().ctrl_commands, 7u);
    EXPECT_EQ(dev->stats().ctrl_errors, 4u);
    EXPECT_FALSE(dev->needs_reset());
}

TEST_F(NetCtrlTest, ClassesNotOfferedAreErr) {
    // RX mode (promiscuous on), MAC table set, VLAN add, RSS config,
    // announce ack (GUEST_ANNOUNCE not negotiated here), guest offloads
    // set: none offered.
    EXPECT_EQ(ack({{command(0, 0, {1}), false}, {1, true}}), kNetCtrlErr);
    EXPECT_EQ(ack({{command(1, 0, std::vector<uint8_t>(8, 0)), false}, {1, true}}), kNetCtrlErr);
    EXPECT_EQ(ack({{command(2, 0, {1, 0}), false}, {1, true}}), kNetCtrlErr);
    EXPECT_EQ(ack({{command(kNetCtrlMq, 1, std::vector<uint8_t>(20, 0)), false}, {1, true}}),
              kNetCtrlErr);
    EXPECT_EQ(ack({{command(3, 0, {}), false}, {1, true}}), kNetCtrlErr);
    EXPECT_EQ(ack({{command(5, 0, std::vector<uint8_t>(8, 0)), false}, {1, true}}), kNetCtrlErr);
    EXPECT_EQ(dev->active_pairs(), 1u);
    EXPECT_FALSE(dev->needs_reset());
}

TEST_F(NetCtrlTest, WrongSizesAreErr) {
    auto mq = [](std::vector<uint8_t> data) {
        return command(kNetCtrlMq, kNetCtrlMqVqPairsSet, std::move(data));
    };
    EXPECT_EQ(ack({{mq({2}), false}, {1, true}}), kNetCtrlErr) << "1 byte of data";
    EXPECT_EQ(ack({{mq({2, 0, 0}), false}, {1, true}}), kNetCtrlErr) << "3 bytes of data";
    EXPECT_EQ(ack({{mq({}), false}, {1, true}}), kNetCtrlErr) << "no data";
    EXPECT_EQ(ack({{std::vector<uint8_t>{kNetCtrlMq}, false}, {1, true}}), kNetCtrlErr)
        << "no command byte";
    EXPECT_EQ(ack({{1, true}}), kNetCtrlErr) << "nothing readable";
    auto huge = mq({2, 0});
    huge.resize(4096);
    EXPECT_EQ(ack({{huge, false}, {1, true}}), kNetCtrlErr) << "oversized";
    EXPECT_EQ(dev->active_pairs(), 1u);
    EXPECT_FALSE(dev->needs_reset());
}

TEST_F(NetCtrlTest, CommandSplitAcrossBuffersIsRead) {
    // Linux's layout: header, data and ack in three descriptors; here the
    // header itself split too, and a larger ack buffer than needed.
    auto reply = send_ctrl({{std::vector<uint8_t>{kNetCtrlMq}, false},
                            {std::vector<uint8_t>{kNetCtrlMqVqPairsSet}, false},
                            {std::vector<uint8_t>{2, 0}, false},
                            {16, true}});
    ASSERT_TRUE(reply.used);
    EXPECT_EQ(reply.used->len, 1u) << "one ack byte written";
    EXPECT_EQ(reply.written, std::vector<uint8_t>{kNetCtrlOk});
    EXPECT_EQ(dev->active_pairs(), 2u);
}

TEST_F(NetCtrlTest, IndirectCommandWorks) {
    uint16_t head = ctrlq().add_indirect_chain({{pairs_set(2), false}, {1, true}});
    dev->queue_notify(kCtrl);
    auto u = ctrlq().pop_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(ctrlq().writable_data(head, u->len), std::vector<uint8_t>{kNetCtrlOk});
    EXPECT_EQ(dev->active_pairs(), 2u);
}

TEST_F(NetCtrlTest, NoAckByteReturnsTheChainAndNeedsReset) {
    auto reply = send_ctrl({{pairs_set(2), false}});
    ASSERT_TRUE(reply.used) << "the chain is given back, so the driver does not wait for good";
    EXPECT_EQ(reply.used->len, 0u);
    EXPECT_EQ(dev->active_pairs(), 1u) << "not carried out";
    EXPECT_TRUE(dev->needs_reset());
    EXPECT_EQ(irq->config_changes(), 1u);
    EXPECT_EQ(interest(0), 0u) << "a failed device polls nothing";
    // Further commands are not looked at.
    ctrlq().add_chain({{pairs_set(2), false}, {1, true}});
    dev->queue_notify(kCtrl);
    EXPECT_FALSE(ctrlq().pop_used());
}

TEST_F(NetCtrlTest, BrokenDescriptorNeedsReset) {
    ctrlq().publish_raw(1000);  // beyond the 64-entry table
    dev->queue_notify(kCtrl);
    EXPECT_TRUE(dev->needs_reset());
    EXPECT_EQ(irq->config_changes(), 1u);
}

TEST_F(NetCtrlTest, AFullRingOfCommandsIsAnswered) {
    // 64 one-descriptor (indirect) commands fill the ring; the last one counts.
    for (unsigned i = 0; i + 1 < VirtioNet::kCtrlQueueSize; ++i)
        ctrlq().add_indirect_chain({{pairs_set(i % 2 ? 1 : 2), false}, {1, true}});
    ctrlq().add_indirect_chain({{pairs_set(2), false}, {1, true}});
    dev->queue_notify(kCtrl);
    events.run_until_idle();
    size_t answered = 0;
    while (ctrlq().pop_used()) ++answered;
    EXPECT_EQ(answered, VirtioNet::kCtrlQueueSize);
    EXPECT_EQ(dev->active_pairs(), 2u);
    EXPECT_EQ(irq->used_count(kCtrl), 1u) << "one interrupt for the batch";
}

TEST_F(NetCtrlTest, PairsSetWithoutMqIsErr) {
    // CTRL_VQ without MQ: one pair, and the control queue is queue 2.
    dev->reset();
    fresh_rings();
    ASSERT_TRUE(try_activate(all_net_features() | kNetFCtrlVq, {0, 1, 2}));
    auto reply = send_ctrl({{pairs_set(2), false}, {1, true}}, /*queue=*/2);
    ASSERT_TRUE(reply.used);
    EXPECT_EQ(reply.written, std::vector<uint8_t>{kNetCtrlErr});
    EXPECT_EQ(dev->active_pairs(), 1u);
    EXPECT_EQ(irq->used_count(2), 1u) << "the control queue's index is 2 here";
}

}  // namespace
}  // namespace rv::test
