// VIRTIO_NET_F_GUEST_ANNOUNCE (5.1.6.5.4) on a one-pair NIC, which now has
// a control queue (rx 0, tx 1, control 2): announce() sets
// VIRTIO_NET_S_ANNOUNCE and signals one config change only for a driver that
// negotiated the feature, VIRTIO_NET_CTRL_ANNOUNCE_ACK clears it, reset
// clears it, and a pending bit survives save_state/restore_state, which
// refuses bytes it did not write.
#include "support/device_counters.h"
#include "unit/virtio_net/net_fixture.h"

namespace rv::test {
namespace {

using namespace virtio;

constexpr uint16_t kCtrl = 2;

uint64_t announce_features() {
    return all_net_features() | kNetFCtrlVq | kNetFGuestAnnounce;
}

class NetAnnounceTest : public NetTest {
  protected:
    NetAnnounceTest()
        : ctrlq(mem,
                FakeDriverQueue::packed_layout(VirtioNet::kCtrlQueueSize, GuestAddress(0x10000)),
                GuestAddress(0xe00000), 1 << 20) {}

    // The queues of `features`: rx and tx, and the control queue with CTRL_VQ.
    std::vector<Queue> queues(uint64_t features) {
        std::vector<Queue> qs;
        qs.push_back(*rxq.create_queue(VirtioNet::kQueueSize, false, true));
        qs.push_back(*txq.create_queue(VirtioNet::kQueueSize, false, true));
        if (features & kNetFCtrlVq)
            qs.push_back(*ctrlq.create_queue(VirtioNet::kCtrlQueueSize, false, true));
        return qs;
    }
    void activate_with(uint64_t features) {
        auto r = dev->activate(ActivateArgs{.memory = mem,
                                            .interrupt = irq,
                                            .queues = queues(features),
                                            .acked_features = features,
                                            .events = events});
        ASSERT_TRUE(r) << r.error().message();
    }

    static uint16_t status_of(VirtioNet& d) {
        std::array<uint8_t, 2> le{};
        d.read_config(kNetConfigStatus, le);
        return static_cast<uint16_t>(le[0] | le[1] << 8);
    }
    uint16_t status() { return status_of(*dev); }

    // Sends class, command and data with a 1-byte ack buffer; the ack, or
    // -1 if the chain came back without one.
    int send_ctrl(uint8_t cls, uint8_t cmd, std::vector<uint8_t> data = {}) {
        data.insert(data.begin(), {cls, cmd});
        uint16_t head = ctrlq.add_chain({{data, false}, {1, true}});
        dev->queue_notify(kCtrl);
        auto used = ctrlq.pop_used();
        if (!used || used->len != 1) return -1;
        return ctrlq.writable_data(head, 1).at(0);
    }
    int ack_announce() { return send_ctrl(kNetCtrlAnnounce, kNetCtrlAnnounceAck); }
    uint64_t counter(std::string_view name) { return test::counter(dev->counters(), name).value(); }

    FakeDriverQueue ctrlq;
};

TEST(NetAnnounceFeaturesTest, OfferedWithOnePairAndWithTwo) {
    for (unsigned pairs : {1u, 2u}) {
        auto [backends, peers] = FakeNetBackend::create_queues(pairs);
        auto dev = VirtioNet::create(std::move(backends), {.mac = kTestMac});
        ASSERT_TRUE(dev);
        const uint64_t f = (*dev)->device_features();
        EXPECT_TRUE(f & kNetFCtrlVq) << pairs;
        EXPECT_TRUE(f & kNetFGuestAnnounce) << pairs;
        EXPECT_EQ(static_cast<bool>(f & kNetFMq), pairs > 1) << "MQ only with more than one pair";
        EXPECT_EQ((*dev)->queue_max_sizes().size(), 2 * pairs + 1) << pairs;
        EXPECT_EQ((*dev)->queue_max_sizes().back(), VirtioNet::kCtrlQueueSize);
    }
}

TEST_F(NetAnnounceTest, OnePairHasThreeQueues) {
    EXPECT_EQ(dev->queue_max_sizes(), (std::vector<uint16_t>{256, 256, 64}));
    activate_with(announce_features());
    auto states = dev->queue_states();
    EXPECT_EQ(states.size(), 3u) << "rx, tx and the control queue";
}

TEST_F(NetAnnounceTest, WithoutTheFeatureNothingIsAnnounced) {
    EXPECT_FALSE(dev->announce()) << "inactive";
    activate_with(all_net_features() | kNetFCtrlVq);
    EXPECT_FALSE(dev->announce()) << "GUEST_ANNOUNCE not negotiated";
    EXPECT_EQ(status(), kNetSLinkUp);
    dev->reset();
    // Out of spec (GUEST_ANNOUNCE needs CTRL_VQ), tolerated: nowhere to ACK.
    activate_with(all_net_features() | kNetFGuestAnnounce);
    EXPECT_FALSE(dev->announce());
    dev->on_resumed_elsewhere();
    EXPECT_EQ(status(), kNetSLinkUp);
    EXPECT_EQ(irq->config_changes(), 0u);
    EXPECT_EQ(dev->stats().announces, 0u);
}

TEST_F(NetAnnounceTest, AnnounceSetsTheStatusBitAndSignalsOneConfigChange) {
    activate_with(announce_features());
    EXPECT_EQ(status(), kNetSLinkUp);
    ASSERT_TRUE(dev->announce());
    EXPECT_EQ(status(), kNetSLinkUp | kNetSAnnounce);
    std::array<uint8_t, 2> le{};
    dev->read_config(kNetConfigStatus, le);
    EXPECT_EQ(le, (std::array<uint8_t, 2>{3, 0})) << "le16";
    EXPECT_EQ(irq->config_changes(), 1u);
    EXPECT_EQ(dev->stats().announces, 1u);
    EXPECT_EQ(counter("announces"), 1u);
    EXPECT_EQ(counter("announce_pending"), 1u);
}

TEST_F(NetAnnounceTest, ResumedElsewhereAnnounces) {
    activate_with(announce_features());
    dev->on_resumed_elsewhere();
    EXPECT_EQ(status(), kNetSLinkUp | kNetSAnnounce);
    EXPECT_EQ(irq->config_changes(), 1u);
}

TEST_F(NetAnnounceTest, AckClearsTheBitAndIsAnsweredOk) {
    activate_with(announce_features());
    ASSERT_TRUE(dev->announce());
    EXPECT_EQ(ack_announce(), kNetCtrlOk);
    EXPECT_EQ(status(), kNetSLinkUp);
    EXPECT_EQ(irq->used_count(kCtrl), 1u) << "the control queue's index is 2";
    EXPECT_EQ(ack_announce(), kNetCtrlOk) << "a second ACK clears a clear bit";
    EXPECT_EQ(dev->stats().ctrl_commands, 2u);
    EXPECT_EQ(dev->stats().ctrl_errors, 0u);
    EXPECT_EQ(counter("announce_pending"), 0u);
    // A later announce (another migration) sets it again.
    ASSERT_TRUE(dev->announce());
    EXPECT_EQ(status(), kNetSLinkUp | kNetSAnnounce);
    EXPECT_EQ(irq->config_changes(), 2u);
    EXPECT_FALSE(dev->needs_reset());
}

TEST_F(NetAnnounceTest, AckWithDataIsErrAndKeepsTheBit) {
    activate_with(announce_features());
    ASSERT_TRUE(dev->announce());
    EXPECT_EQ(send_ctrl(kNetCtrlAnnounce, kNetCtrlAnnounceAck, {0}), kNetCtrlErr);
    EXPECT_EQ(send_ctrl(kNetCtrlAnnounce, 1), kNetCtrlErr) << "no command 1 in the class";
    EXPECT_EQ(status(), kNetSLinkUp | kNetSAnnounce);
    EXPECT_FALSE(dev->needs_reset());
}

TEST_F(NetAnnounceTest, AckWithoutTheFeatureIsErr) {
    activate_with(all_net_features() | kNetFCtrlVq);
    EXPECT_EQ(ack_announce(), kNetCtrlErr);
    EXPECT_EQ(dev->stats().ctrl_errors, 1u);
    EXPECT_FALSE(dev->needs_reset());
}

TEST_F(NetAnnounceTest, PairsSetWithoutMqIsErr) {
    activate_with(announce_features());  // MQ is not offered on one pair
    for (uint16_t n : {1, 2})
        EXPECT_EQ(send_ctrl(kNetCtrlMq, kNetCtrlMqVqPairsSet,
                            {static_cast<uint8_t>(n), static_cast<uint8_t>(n >> 8)}),
                  kNetCtrlErr)
            << n;
    EXPECT_EQ(dev->active_pairs(), 1u);
    EXPECT_FALSE(dev->needs_reset());
}

TEST_F(NetAnnounceTest, AFailedDeviceAnnouncesNothing) {
    activate_with(announce_features());
    ctrlq.add_chain({{std::vector<uint8_t>{kNetCtrlAnnounce, kNetCtrlAnnounceAck}, false}});
    dev->queue_notify(kCtrl);  // no ack byte: NEEDS_RESET
    ASSERT_TRUE(dev->needs_reset());
    const size_t changes = irq->config_changes();
    EXPECT_FALSE(dev->announce());
    EXPECT_EQ(irq->config_changes(), changes);
}

TEST_F(NetAnnounceTest, ResetClearsTheBit) {
    activate_with(announce_features());
    ASSERT_TRUE(dev->announce());
    dev->reset();
    EXPECT_EQ(status(), kNetSLinkUp);
    // Nothing was ever published: the same rings do for the next driver.
    activate_with(announce_features());
    EXPECT_EQ(status(), kNetSLinkUp) << "a new driver is told nothing it did not ask for";
    EXPECT_EQ(counter("announce_pending"), 0u);
}

TEST_F(NetAnnounceTest, APendingBitSurvivesSaveAndRestore) {
    activate_with(announce_features());
    const std::vector<uint8_t> clear_state = dev->save_state();
    ASSERT_TRUE(dev->announce());
    ASSERT_TRUE(dev->quiesce());
    const auto states = dev->queue_states();
    ASSERT_EQ(states.size(), 3u);
    const auto saved = dev->save_state();
    EXPECT_NE(saved, clear_state);
    dev->reset();  // the old process is gone

    auto [backend, peer] = FakeNetBackend::create();
    auto created = VirtioNet::create(std::move(backend), {.mac = kTestMac});
    ASSERT_TRUE(created);
    VirtioNet& b = **created;
    auto qs = queues(announce_features());
    for (size_t i = 0; i < qs.size(); ++i) qs[i].restore(states[i]);
    const size_t changes = irq->config_changes();
    ASSERT_TRUE(b.activate(ActivateArgs{.memory = mem,
                                        .interrupt = irq,
                                        .queues = std::move(qs),
                                        .acked_features = announce_features(),
                                        .events = events}));
    EXPECT_EQ(status_of(b), kNetSLinkUp);
    ASSERT_TRUE(b.restore_state(saved));
    EXPECT_EQ(status_of(b), kNetSLinkUp | kNetSAnnounce);
    EXPECT_EQ(irq->config_changes(), changes) << "restoring does not signal by itself";
    EXPECT_EQ(b.save_state(), saved);

    // The driver ACKs on the restored device's control queue.
    std::vector<uint8_t> ack{kNetCtrlAnnounce, kNetCtrlAnnounceAck};
    uint16_t head = ctrlq.add_chain({{ack, false}, {1, true}});
    b.queue_notify(kCtrl);
    auto used = ctrlq.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(ctrlq.writable_data(head, used->len), std::vector<uint8_t>{kNetCtrlOk});
    EXPECT_EQ(status_of(b), kNetSLinkUp);

    // A state without the bit clears it.
    ASSERT_TRUE(b.announce());
    ASSERT_TRUE(b.restore_state(clear_state));
    EXPECT_EQ(status_of(b), kNetSLinkUp);
    b.reset();
}

TEST_F(NetAnnounceTest, AStateWrittenBeforeAnnounceStillRestores) {
    activate_with(announce_features());
    std::vector<uint8_t> pairs_only{1, 0};  // le16 pairs, no flags byte
    ASSERT_TRUE(dev->restore_state(pairs_only));
    EXPECT_EQ(status(), kNetSLinkUp);
}

TEST_F(NetAnnounceTest, MalformedStateIsRefusedAndChangesNothing) {
    activate_with(announce_features());
    ASSERT_TRUE(dev->announce());
    const auto saved = dev->save_state();
    ASSERT_EQ(saved.size(), 3u);
    for (const std::vector<uint8_t>& bad : std::vector<std::vector<uint8_t>>{
             {1},           // truncated pairs
             {1, 0, 1, 0},  // a byte left over
             {1, 0, 2},     // an unknown flag
             {1, 0, 0xff},  // all of them
             {0, 0, 1},     // no pairs
             {2, 0, 0},     // more pairs than the NIC has
         }) {
        EXPECT_FALSE(dev->restore_state(bad)) << ::testing::PrintToString(bad);
        EXPECT_EQ(dev->save_state(), saved) << "unchanged";
    }
    EXPECT_EQ(status(), kNetSLinkUp | kNetSAnnounce);
    EXPECT_FALSE(dev->needs_reset());

    // A bit its driver could not have been told of is not a state we wrote.
    dev->reset();
    activate_with(all_net_features() | kNetFCtrlVq);
    EXPECT_FALSE(dev->restore_state(saved));
    EXPECT_EQ(status(), kNetSLinkUp);
}

}  // namespace
}  // namespace rv::test
