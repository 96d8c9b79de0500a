// virtio-net and snapshots: quiesce gives rx chains held for a packet back
// to the ring (the packet is dropped, as a NIC drops one it has no buffer
// for) and the device carries on; a device activated on the saved queue
// positions continues where the original stopped, replaying nothing.
#include "unit/virtio_net/net_fixture.h"

namespace rv::test {
namespace {

using virtio::VirtioNet;

class NetSnapshotTest : public NetTest {};

TEST_F(NetSnapshotTest, HeldRxChainsGoBackToTheRingAndTheDeviceCarriesOn) {
    activate();
    uint16_t h1 = rxq.add_chain({{1000, true}});
    net->send(make_packet(2500, 5));  // waits for more buffers, holding h1
    events.run_until_idle();
    EXPECT_FALSE(rxq.pop_used());
    ASSERT_EQ(dev->queue_states().at(VirtioNet::kRxQueue).next_avail, 1);

    ASSERT_TRUE(dev->quiesce());
    auto states = dev->queue_states();
    ASSERT_EQ(states.size(), 2u);
    EXPECT_EQ(states[VirtioNet::kRxQueue].next_avail, 0) << "h1 is back in the ring";
    EXPECT_EQ(states[VirtioNet::kRxQueue].next_used, 0);
    EXPECT_EQ(dev->stats().rx_dropped, 1u);

    // Should the VM go on, the next packet lands in h1.
    auto small = make_packet(100, 9);
    net->send(small);
    events.run_until_idle();
    auto used = rxq.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, h1);
    EXPECT_EQ(used->len, small.size());
}

TEST_F(NetSnapshotTest, RestoredDeviceContinuesFromTheSavedPositions) {
    activate();
    auto p1 = make_packet(200, 1);
    txq.add_chain({{p1, false}});
    dev->queue_notify(VirtioNet::kTxQueue);
    ASSERT_EQ(net->receive(), p1);
    ASSERT_TRUE(txq.pop_used());
    rxq.add_chain({{2048, true}});
    uint16_t r2 = rxq.add_chain({{2048, true}});
    net->send(make_packet(64, 3));
    events.run_until_idle();
    ASSERT_TRUE(rxq.pop_used());
    auto p2 = make_packet(300, 2);
    uint16_t t2 = txq.add_chain({{p2, false}});  // published, not yet taken

    ASSERT_TRUE(dev->quiesce());
    auto states = dev->queue_states();
    auto device_state = dev->save_state();
    dev->reset();  // the old process is gone

    auto [backend, state] = FakeNetBackend::create();
    auto created = VirtioNet::create(std::move(backend), {.mac = kTestMac});
    ASSERT_TRUE(created);
    auto& b = *created;
    std::vector<virtio::Queue> qs;
    qs.push_back(*rxq.create_queue(256, false, true));
    qs.push_back(*txq.create_queue(256, false, true));
    for (size_t i = 0; i < qs.size(); ++i) qs[i].restore(states[i]);
    ASSERT_TRUE(b->activate(virtio::ActivateArgs{.memory = mem,
                                                 .interrupt = irq,
                                                 .queues = std::move(qs),
                                                 .acked_features = all_net_features(),
                                                 .events = events}));
    ASSERT_TRUE(b->restore_state(device_state));
    EXPECT_EQ(b->queue_states(), states);
    // The transport kicks every queue after a restore.
    b->queue_notify(VirtioNet::kTxQueue);
    EXPECT_EQ(state->receive(), p2) << "the first packet is not sent again";
    EXPECT_FALSE(state->receive());
    auto tx_used = txq.pop_used();
    ASSERT_TRUE(tx_used);
    EXPECT_EQ(tx_used->id, t2);
    auto p3 = make_packet(80, 4);
    state->send(p3);
    events.run_until_idle();
    auto rx_used = rxq.pop_used();
    ASSERT_TRUE(rx_used);
    EXPECT_EQ(rx_used->id, r2);
    b->reset();
}

TEST_F(NetSnapshotTest, DeviceStateIsCheckedAgainstTheDevice) {
    activate();
    auto saved = dev->save_state();
    ASSERT_FALSE(saved.empty());
    EXPECT_TRUE(dev->restore_state(saved));
    std::vector<uint8_t> zero_pairs{0, 0};
    EXPECT_FALSE(dev->restore_state(zero_pairs));
    std::vector<uint8_t> two_pairs{2, 0};  // this NIC has one
    EXPECT_FALSE(dev->restore_state(two_pairs));
    std::vector<uint8_t> truncated{1};
    EXPECT_FALSE(dev->restore_state(truncated));
    dev->reset();
    EXPECT_TRUE(dev->save_state().empty());
    EXPECT_FALSE(dev->restore_state(saved)) << "pairs for an inactive device";
}

}  // namespace
}  // namespace rv::test
