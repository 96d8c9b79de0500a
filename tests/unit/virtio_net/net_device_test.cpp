// virtio-net as a VirtioDevice: identity, features, config space, offload
// negotiation with the backend, activation, reset and broken rings.
#include "unit/virtio_net/net_fixture.h"

namespace rv::test {
namespace {

using namespace virtio;

class NetDeviceTest : public NetTest {
  protected:
    std::vector<uint8_t> config(uint64_t offset, size_t len) {
        std::vector<uint8_t> out(len, 0xee);
        dev->read_config(offset, out);
        return out;
    }
};

TEST_F(NetDeviceTest, Identity) {
    EXPECT_EQ(dev->device_type(), 1u);
    EXPECT_EQ(dev->queue_max_sizes(), (std::vector<uint16_t>{256, 256, 64}))
        << "rx 0, tx 1, control 2";
    EXPECT_EQ(net->vnet_hdr_size, 12) << "create() sets the virtio 1.x header size";
}

TEST_F(NetDeviceTest, OffersOffloadsControlQueueAndAnnounceButNoMq) {
    uint64_t f = dev->device_features();
    for (uint64_t bit : {kFVersion1, kFRingIndirectDesc, kFRingEventIdx, kNetFMac, kNetFStatus,
                         kNetFCsum, kNetFGuestCsum, kNetFHostTso4, kNetFHostTso6, kNetFHostEcn,
                         kNetFGuestTso4, kNetFGuestTso6, kNetFGuestEcn, kNetFMrgRxbuf})
        EXPECT_TRUE(f & bit) << std::hex << bit;
    EXPECT_TRUE(f & kNetFCtrlVq) << "for GUEST_ANNOUNCE";
    EXPECT_TRUE(f & kNetFGuestAnnounce);
    EXPECT_FALSE(f & kNetFMq) << "one pair";
    EXPECT_FALSE(f & kNetFMtu) << "no MTU configured";
    EXPECT_FALSE(f & kNetFGuestUfo);
}

TEST_F(NetDeviceTest, ConfigSpaceHoldsMacStatusAndPairs) {
    EXPECT_EQ(config(0, 6), std::vector<uint8_t>(kTestMac.begin(), kTestMac.end()));
    EXPECT_EQ(config(6, 2), (std::vector<uint8_t>{kNetSLinkUp, 0}));
    EXPECT_EQ(config(8, 2), (std::vector<uint8_t>{1, 0}));
    // A read straddling fields, and reads past the end.
    EXPECT_EQ(config(4, 4), (std::vector<uint8_t>{0x34, 0x56, 1, 0}));
    EXPECT_EQ(config(10, 4), (std::vector<uint8_t>{0, 0, 0, 0}));
    EXPECT_EQ(config(~0ull - 1, 4), (std::vector<uint8_t>{0, 0, 0, 0}));
}

TEST_F(NetDeviceTest, ConfigWritesAreIgnored) {
    std::vector<uint8_t> junk(12, 0xff);
    dev->write_config(0, junk);
    EXPECT_EQ(config(0, 6), std::vector<uint8_t>(kTestMac.begin(), kTestMac.end()));
}

TEST(NetCreateTest, MtuIsOfferedWhenConfigured) {
    auto [backend, state] = FakeNetBackend::create();
    auto dev = VirtioNet::create(std::move(backend), {.mac = kTestMac, .mtu = 9000});
    ASSERT_TRUE(dev);
    EXPECT_TRUE((*dev)->device_features() & kNetFMtu);
    std::vector<uint8_t> mtu(2);
    (*dev)->read_config(kNetConfigMtu, mtu);
    EXPECT_EQ(mtu, (std::vector<uint8_t>{0x28, 0x23}));
}

TEST(NetCreateTest, RejectsBadMacsAndMtu) {
    auto make = [](std::array<uint8_t, 6> mac, std::optional<uint16_t> mtu = {}) {
        auto [backend, state] = FakeNetBackend::create();
        return VirtioNet::create(std::move(backend), {.mac = mac, .mtu = mtu});
    };
    EXPECT_FALSE(make({0x01, 0, 0, 0, 0, 1})) << "multicast";
    EXPECT_FALSE(make({0, 0, 0, 0, 0, 0}));
    EXPECT_FALSE(make(kTestMac, 67));
    EXPECT_TRUE(make(kTestMac, 68));
    EXPECT_FALSE(VirtioNet::create(nullptr, {.mac = kTestMac}));
}

TEST_F(NetDeviceTest, GuestOffloadsReachTheBackend) {
    activate(kFVersion1 | kNetFGuestCsum | kNetFGuestTso4 | kNetFGuestEcn | kNetFHostTso6);
    ASSERT_EQ(net->offloads.size(), 1u);
    EXPECT_EQ(net->offloads.back(), (NetOffloads{.csum = true, .tso4 = true, .ecn = true}));
    dev->reset();
    EXPECT_EQ(net->offloads.back(), NetOffloads{}) << "reset turns offloads off";
    activate(kFVersion1 | kNetFGuestCsum | kNetFGuestTso4 | kNetFGuestTso6);
    EXPECT_EQ(net->offloads.back(), (NetOffloads{.csum = true, .tso4 = true, .tso6 = true}));
}

TEST_F(NetDeviceTest, NoGuestOffloadsMeansNone) {
    activate(kFVersion1 | kNetFCsum | kNetFHostTso4 | kNetFMrgRxbuf);
    EXPECT_EQ(net->offloads.back(), NetOffloads{});
}

TEST_F(NetDeviceTest, SegmentationWithoutChecksumIsNotEnabled) {
    // Out of spec (GUEST_TSO4 requires GUEST_CSUM); the tap would reject it.
    activate(kFVersion1 | kNetFGuestTso4 | kNetFGuestEcn);
    EXPECT_EQ(net->offloads.back(), NetOffloads{});
}

TEST_F(NetDeviceTest, ActivationRegistersForReadsOnly) {
    EXPECT_EQ(interest(), 0u);
    activate();
    EXPECT_EQ(interest(), static_cast<uint32_t>(EPOLLIN));
}

TEST_F(NetDeviceTest, ActivationNeedsVersion1AndBothQueues) {
    EXPECT_FALSE(try_activate(all_net_features() & ~kFVersion1));
    EXPECT_FALSE(try_activate(all_net_features(), false, /*queues=*/1));
    EXPECT_EQ(interest(), 0u);
    EXPECT_TRUE(try_activate(all_net_features()));
}

TEST_F(NetDeviceTest, ResetUnregistersAndStopsProcessing) {
    activate();
    dev->reset();
    EXPECT_EQ(interest(), 0u);
    txq.add_chain({{make_packet(60), false}});
    dev->queue_notify(VirtioNet::kTxQueue);
    EXPECT_FALSE(net->receive()) << "no guest memory access after reset";
    EXPECT_FALSE(txq.pop_used());
    dev->reset();  // twice is harmless
}

TEST_F(NetDeviceTest, ResetDropsAPacketWaitingForBuffers) {
    activate();
    rxq.add_chain({{100, true}});
    net->send(make_packet(3000));
    events.run_until_idle();
    EXPECT_FALSE(rxq.pop_used());
    dev->reset();
    EXPECT_EQ(dev->stats().rx_dropped, 1u);
}

TEST_F(NetDeviceTest, BrokenTxRingNeedsResetAndUnregisters) {
    activate();
    txq.set_avail_idx(1000);  // more than the queue size ahead
    dev->queue_notify(VirtioNet::kTxQueue);
    EXPECT_TRUE(dev->needs_reset());
    EXPECT_EQ(irq->config_changes(), 1u);
    EXPECT_EQ(interest(), 0u) << "a readable backend must not spin a broken device";
    net->send(make_packet(60));
    EXPECT_EQ(events.run_until_idle(), 0u);
    dev->queue_notify(VirtioNet::kRxQueue);  // ignored while broken
    dev->reset();
    EXPECT_FALSE(dev->needs_reset());
}

TEST_F(NetDeviceTest, BrokenRxDescriptorNeedsReset) {
    activate();
    rxq.publish_raw(300);  // head index past the queue size
    net->send(make_packet(60));
    events.run_until_idle();
    EXPECT_TRUE(dev->needs_reset());
    EXPECT_EQ(interest(), 0u);
}

TEST_F(NetDeviceTest, CountsNotificationsAndInterrupts) {
    activate();
    txq.add_chain({{make_packet(60), false}});
    dev->queue_notify(VirtioNet::kTxQueue);
    dev->queue_notify(VirtioNet::kTxQueue);
    dev->queue_notify(7);  // no such queue: counted, ignored
    auto s = dev->stats();
    EXPECT_EQ(s.notifications, 3u);
    EXPECT_EQ(s.interrupts, 1u);
}

TEST_F(NetDeviceTest, NoInterruptWhenDriverSuppressesThem) {
    activate();
    txq.set_avail_flags(kAvailFNoInterrupt);
    txq.add_chain({{make_packet(60), false}});
    dev->queue_notify(VirtioNet::kTxQueue);
    EXPECT_TRUE(txq.pop_used());
    EXPECT_EQ(irq->used_count(VirtioNet::kTxQueue), 0u);
}

}  // namespace
}  // namespace rv::test
