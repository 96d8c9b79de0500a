// Multiqueue virtio-net: what a 2-pair device offers, pair 0 only until the
// driver's VQ_PAIRS_SET, then each pair on its own backend queue and
// interrupt index, the pairs switched off again (tap queue detached),
// activation by negotiated features, reset and re-activation, and the
// per-pair fairness and backpressure the single-pair device has.
#include "support/device_counters.h"
#include "unit/virtio_net/net_mq_fixture.h"

namespace rv::test {
namespace {

using namespace virtio;

TEST_F(NetMqTest, OffersMqAndControlQueueAndSaysMaxPairs) {
    EXPECT_EQ(dev->queue_pairs(), 2u);
    const uint64_t f = dev->device_features();
    EXPECT_TRUE(f & kNetFMq);
    EXPECT_TRUE(f & kNetFCtrlVq);
    EXPECT_TRUE(f & kNetFGuestAnnounce);
    EXPECT_EQ(dev->queue_max_sizes(), (std::vector<uint16_t>{256, 256, 256, 256, 64}));
    std::vector<uint8_t> pairs(2);
    dev->read_config(kNetConfigMaxVqPairs, pairs);
    EXPECT_EQ(pairs, (std::vector<uint8_t>{2, 0}));
    EXPECT_EQ(nets[0]->vnet_hdr_size, 12);
    EXPECT_EQ(nets[1]->vnet_hdr_size, 12) << "every queue gets the header size";
}

TEST(NetMqCreateTest, OnePairHasNoMqButAControlQueue) {
    auto [backends, peers] = FakeNetBackend::create_queues(1);
    auto dev = VirtioNet::create(std::move(backends), {.mac = kTestMac});
    ASSERT_TRUE(dev);
    EXPECT_FALSE((*dev)->device_features() & kNetFMq);
    EXPECT_TRUE((*dev)->device_features() & kNetFCtrlVq) << "for GUEST_ANNOUNCE";
    EXPECT_TRUE((*dev)->device_features() & kNetFGuestAnnounce);
    EXPECT_EQ((*dev)->queue_max_sizes(), (std::vector<uint16_t>{256, 256, 64}));
    EXPECT_FALSE(test::counter((*dev)->counters(), "queue_pairs")) << "no multiqueue counters";
}

TEST(NetMqCreateTest, RefusesNoneOrTooManyPairs) {
    EXPECT_FALSE(VirtioNet::create(std::vector<std::unique_ptr<NetBackend>>{}, {.mac = kTestMac}));
    auto [backends, peers] = FakeNetBackend::create_queues(VirtioNet::kMaxQueuePairs + 1);
    EXPECT_FALSE(VirtioNet::create(std::move(backends), {.mac = kTestMac}));
    auto [max, max_peers] = FakeNetBackend::create_queues(VirtioNet::kMaxQueuePairs);
    auto dev = VirtioNet::create(std::move(max), {.mac = kTestMac});
    ASSERT_TRUE(dev);
    EXPECT_EQ((*dev)->queue_max_sizes().size(), 2 * VirtioNet::kMaxQueuePairs + 1);
}

TEST_F(NetMqTest, OnlyPairZeroIsServedBeforePairsSet) {
    activate();
    EXPECT_EQ(dev->active_pairs(), 1u);
    EXPECT_TRUE(nets[0]->attached);
    EXPECT_FALSE(nets[1]->attached) << "the kernel must not steer flows to an unread queue";
    EXPECT_TRUE(interest(0) & EPOLLIN);
    EXPECT_EQ(interest(1), 0u);

    auto out = make_packet(300, 1);
    txq(1).add_chain({{out, false}});
    dev->queue_notify(VirtioNet::tx_queue(1));
    EXPECT_FALSE(nets[1]->receive()) << "tx of pair 1 is not served yet";
    EXPECT_EQ(txq(1).used_idx(), 0);

    rxq(1).add_chain({{2048, true}});
    auto in = make_packet(400, 2);
    ASSERT_TRUE(nets[1]->send(in));
    dev->queue_notify(VirtioNet::rx_queue(1));
    events.run_until_idle();
    EXPECT_FALSE(rxq(1).pop_used()) << "rx of pair 1 is not served yet";
    EXPECT_TRUE(nets[1]->device_readable());
    EXPECT_EQ(nets[1]->io_while_detached, 0u);
    EXPECT_EQ(irq->used_count(2) + irq->used_count(3), 0u);

    // Switched on, pair 1 looks at what waited for it.
    ASSERT_EQ(set_pairs(2), kNetCtrlOk);
    EXPECT_EQ(dev->active_pairs(), 2u);
    EXPECT_TRUE(nets[1]->attached);
    EXPECT_EQ(nets[1]->receive(), out);
    auto u = rxq(1).pop_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->len, in.size());
    EXPECT_EQ(nets[1]->io_while_detached, 0u);
}

TEST_F(NetMqTest, BothPairsCarryTrafficAfterPairsSet) {
    activate();
    ASSERT_EQ(set_pairs(2), kNetCtrlOk);
    EXPECT_GE(irq->used_count(kCtrl), 1u) << "the control queue signals its own index";
    EXPECT_FALSE(interest(1) & EPOLLIN) << "no rx buffers on pair 1 yet";

    // TX on pair 1 goes to backend queue 1 and signals queue 3.
    auto out1 = make_packet(500, 3);
    txq(1).add_chain({{out1, false}});
    dev->queue_notify(VirtioNet::tx_queue(1));
    EXPECT_EQ(nets[1]->receive(), out1);
    EXPECT_FALSE(nets[0]->receive());
    EXPECT_EQ(irq->used_count(3), 1u);
    EXPECT_EQ(irq->used_count(1), 0u);
    // ... and pair 0 still on queue 0.
    auto out0 = make_packet(600, 4);
    txq(0).add_chain({{out0, false}});
    dev->queue_notify(VirtioNet::tx_queue(0));
    EXPECT_EQ(nets[0]->receive(), out0);
    EXPECT_FALSE(nets[1]->receive());
    EXPECT_EQ(irq->used_count(1), 1u);

    // A packet on backend queue 1 lands in rx queue 2 and signals index 2.
    uint16_t h0 = rxq(0).add_chain({{2048, true}});
    uint16_t h1 = rxq(1).add_chain({{2048, true}});
    dev->queue_notify(VirtioNet::rx_queue(1));
    EXPECT_TRUE(interest(1) & EPOLLIN);
    auto in1 = make_packet(700, 5);
    ASSERT_TRUE(nets[1]->send(in1));
    events.run_until_idle();
    auto u1 = rxq(1).pop_used();
    ASSERT_TRUE(u1);
    EXPECT_EQ(u1->id, h1);
    auto expect = in1;
    expect[kVnetHdrNumBuffersOffset] = 1;
    EXPECT_EQ(rxq(1).writable_data(h1, u1->len), expect);
    EXPECT_FALSE(rxq(0).pop_used());
    EXPECT_EQ(irq->used_count(2), 1u);
    EXPECT_EQ(irq->used_count(0), 0u);

    auto in0 = make_packet(800, 6);
    ASSERT_TRUE(nets[0]->send(in0));
    events.run_until_idle();
    auto u0 = rxq(0).pop_used();
    ASSERT_TRUE(u0);
    EXPECT_EQ(u0->id, h0);
    EXPECT_EQ(irq->used_count(0), 1u);
    EXPECT_EQ(dev->stats().rx_packets, 2u) << "counters are the device's, over all pairs";
    EXPECT_EQ(dev->stats().tx_packets, 2u);
}

TEST_F(NetMqTest, PairsSwitchedOffAreNotServedAndDetached) {
    activate();
    ASSERT_EQ(set_pairs(2), kNetCtrlOk);
    ASSERT_EQ(set_pairs(1), kNetCtrlOk);
    EXPECT_EQ(dev->active_pairs(), 1u);
    EXPECT_FALSE(nets[1]->attached);
    EXPECT_EQ(interest(1), 0u);
    txq(1).add_chain({{make_packet(100, 1), false}});
    dev->queue_notify(VirtioNet::tx_queue(1));
    EXPECT_FALSE(nets[1]->receive());
    EXPECT_EQ(test::counter(dev->counters(), "active_pairs"), 1u);
}

TEST_F(NetMqTest, WithoutMqOnlyPairZeroExists) {
    // A driver without MQ enables queues 0 and 1 only (a firmware driver).
    ASSERT_TRUE(try_activate(all_net_features(), {0, 1}));
    EXPECT_EQ(dev->active_pairs(), 1u);
    EXPECT_FALSE(nets[1]->attached);
    txq(0).add_chain({{make_packet(100, 1), false}});
    dev->queue_notify(VirtioNet::tx_queue(0));
    EXPECT_TRUE(nets[0]->receive());
    dev->queue_notify(kCtrl);  // no control queue: ignored
    EXPECT_FALSE(dev->needs_reset());
}

TEST_F(NetMqTest, ActivationNeedsTheQueuesTheFeaturesCallFor) {
    auto missing = try_activate(mq_features(), {0, 1, 2, 4});
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("queue 3"), std::string::npos)
        << missing.error().message();
    EXPECT_FALSE(try_activate(mq_features(), {0, 1, 2, 3})) << "no control queue";
    EXPECT_FALSE(try_activate(all_net_features() | kNetFMq)) << "MQ needs CTRL_VQ";
    EXPECT_TRUE(try_activate(mq_features()));
}

TEST_F(NetMqTest, ResetAndReactivateStartOverOnPairZero) {
    activate();
    ASSERT_EQ(set_pairs(2), kNetCtrlOk);
    dev->reset();
    EXPECT_EQ(dev->active_pairs(), 0u);
    EXPECT_EQ(interest(0), 0u);
    EXPECT_EQ(interest(1), 0u);
    EXPECT_EQ(nets[1]->offloads.back(), NetOffloads{}) << "reset clears every queue's offloads";

    // A new driver: fresh rings.
    fresh_rings();
    activate();
    EXPECT_EQ(dev->active_pairs(), 1u);
    EXPECT_FALSE(nets[1]->attached);
    txq(1).add_chain({{make_packet(100, 1), false}});
    dev->queue_notify(VirtioNet::tx_queue(1));
    EXPECT_FALSE(nets[1]->receive()) << "pair 1 waits for a new VQ_PAIRS_SET";
    ASSERT_EQ(set_pairs(2), kNetCtrlOk);
    EXPECT_TRUE(nets[1]->receive());
}

TEST_F(NetMqTest, TxBudgetYieldsAndTheKickResumesPairOne) {
    activate();
    ASSERT_EQ(set_pairs(2), kNetCtrlOk);
    const size_t total = VirtioNet::kTxBudget + 10;
    std::vector<uint8_t> packet = make_packet(60, 1);
    // The ring holds 256: publish as the device consumes, like a busy driver.
    for (size_t i = 0; i < 200; ++i) txq(1).add_chain({{packet, false}});
    size_t published = 200;
    nets[1]->on_device_write = [&] {
        if (published < total) {
            txq(1).add_chain({{packet, false}});
            ++published;
        }
        while (txq(1).pop_used()) {
        }
    };
    dev->queue_notify(VirtioNet::tx_queue(1));
    EXPECT_EQ(nets[1]->receive_all().size(), VirtioNet::kTxBudget) << "one pass, one budget";
    EXPECT_EQ(test::counter(dev->counters(), "tx_resume_pending"), 1u);
    events.run_until_idle();
    EXPECT_EQ(nets[1]->receive_all().size(), total - VirtioNet::kTxBudget);
    EXPECT_EQ(dev->stats().budget_yields, 1u);
}

TEST_F(NetMqTest, RxStallAndTxBackpressureArePerPair) {
    activate();
    ASSERT_EQ(set_pairs(2), kNetCtrlOk);
    // Pair 1 has no rx buffers: it alone stops polling its backend.
    rxq(0).add_chain({{2048, true}});
    rxq(0).add_chain({{2048, true}});
    ASSERT_TRUE(nets[1]->send(make_packet(100, 1)));
    ASSERT_TRUE(nets[0]->send(make_packet(100, 2)));
    events.run_until_idle();
    EXPECT_FALSE(interest(1) & EPOLLIN);
    EXPECT_TRUE(interest(0) & EPOLLIN);
    EXPECT_TRUE(rxq(0).pop_used());

    // Backend queue 0 full: pair 0 waits for EPOLLOUT, pair 1 sends on.
    int size = 4096;
    ASSERT_EQ(::setsockopt(nets[0]->device_end.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)),
              0);
    std::vector<uint8_t> filler(1000, 0);
    while (::send(nets[0]->device_end.get(), filler.data(), filler.size(), MSG_DONTWAIT) > 0) {
    }
    txq(0).add_chain({{make_packet(100, 3), false}});
    dev->queue_notify(VirtioNet::tx_queue(0));
    EXPECT_TRUE(interest(0) & EPOLLOUT);
    EXPECT_FALSE(interest(1) & EPOLLOUT);
    EXPECT_EQ(txq(0).used_idx(), 0) << "the chain went back to the ring";
    txq(1).add_chain({{make_packet(100, 4), false}});
    dev->queue_notify(VirtioNet::tx_queue(1));
    EXPECT_TRUE(nets[1]->receive());
    EXPECT_EQ(test::counter(dev->counters(), "tx_waiting_for_backend"), 1u);
}

}  // namespace
}  // namespace rv::test
