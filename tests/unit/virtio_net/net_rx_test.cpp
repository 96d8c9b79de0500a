// virtio-net RX: packets split over mergeable buffers with num_buffers set,
// whole packets into big buffers otherwise, and a slow guest never loses a
// packet: it waits in the backend.
#include "unit/virtio_net/net_fixture.h"
#include "support/device_counters.h"

namespace rv::test {
namespace {

using virtio::VirtioNet;

class NetRxTest : public NetTest {
  protected:
    // The packet as the guest should see it: num_buffers filled in.
    static std::vector<uint8_t> expected(std::vector<uint8_t> packet, uint16_t num_buffers) {
        packet[kVnetHdrNumBuffersOffset] = static_cast<uint8_t>(num_buffers);
        packet[kVnetHdrNumBuffersOffset + 1] = static_cast<uint8_t>(num_buffers >> 8);
        return packet;
    }
    // Concatenates what the device wrote into the used chains, in order.
    std::vector<uint8_t> collect(size_t chains, std::vector<UsedElem>* elems = nullptr) {
        std::vector<uint8_t> out;
        for (size_t i = 0; i < chains; ++i) {
            auto u = rxq.pop_used();
            if (!u) break;
            if (elems) elems->push_back(*u);
            auto part = rxq.writable_data(static_cast<uint16_t>(u->id), u->len);
            out.insert(out.end(), part.begin(), part.end());
        }
        return out;
    }
};

TEST_F(NetRxTest, MergeableSplitsAPacketAndSetsNumBuffers) {
    activate();
    std::vector<uint16_t> heads;
    for (int i = 0; i < 4; ++i) heads.push_back(rxq.add_chain({{1000, true}}));
    auto packet = make_packet(2500, 4);  // 2512 bytes: 1000 + 1000 + 512
    net->send(packet);
    events.run_until_idle();

    std::vector<UsedElem> elems;
    auto got = collect(4, &elems);
    ASSERT_EQ(elems.size(), 3u) << "the fourth buffer stays available";
    EXPECT_EQ(elems[0], (UsedElem{heads[0], 1000}));
    EXPECT_EQ(elems[1], (UsedElem{heads[1], 1000}));
    EXPECT_EQ(elems[2], (UsedElem{heads[2], 512}));
    EXPECT_EQ(num_buffers_of(got), 3u);
    EXPECT_EQ(got, expected(packet, 3));
    EXPECT_EQ(irq->used_count(VirtioNet::kRxQueue), 1u);
    auto s = dev->stats();
    EXPECT_EQ(s.rx_packets, 1u);
    EXPECT_EQ(s.rx_bytes, 2500u);
}

TEST_F(NetRxTest, MergeableSmallPacketsTakeOneBufferEach) {
    activate();
    for (int i = 0; i < 3; ++i) rxq.add_chain({{1518, true}});
    auto a = make_packet(60, 1);
    auto b = make_packet(1506, 2);  // exactly fills a buffer
    net->send(a);
    net->send(b);
    events.run_until_idle();
    EXPECT_EQ(collect(1), expected(a, 1));
    EXPECT_EQ(collect(1), expected(b, 1));
    EXPECT_FALSE(rxq.pop_used());
    EXPECT_EQ(dev->stats().rx_packets, 2u);
}

TEST_F(NetRxTest, MergeableChainWithSeveralBuffers) {
    activate();
    // One chain of three writable descriptors (header + two data pages).
    uint16_t head = rxq.add_chain({{12, true}, {100, true}, {4096, true}});
    auto packet = make_packet(150, 6);
    net->send(packet);
    events.run_until_idle();
    auto u = rxq.pop_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->id, head);
    EXPECT_EQ(u->len, packet.size());
    EXPECT_EQ(rxq.writable_data(head, u->len), expected(packet, 1));
}

TEST_F(NetRxTest, WithoutMergeableEachPacketFillsOneChain) {
    activate(all_net_features() & ~virtio::kNetFMrgRxbuf);
    uint16_t h1 = rxq.add_chain({{12, true}, {2000, true}});
    uint16_t h2 = rxq.add_chain({{12, true}, {2000, true}});
    auto a = make_packet(1514, 1);
    auto b = make_packet(900, 2);
    net->send(a);
    net->send(b);
    events.run_until_idle();
    auto u1 = rxq.pop_used();
    auto u2 = rxq.pop_used();
    ASSERT_TRUE(u1 && u2);
    EXPECT_EQ(*u1, (UsedElem{h1, static_cast<uint32_t>(a.size())}));
    EXPECT_EQ(*u2, (UsedElem{h2, static_cast<uint32_t>(b.size())}));
    EXPECT_EQ(rxq.writable_data(h1, u1->len), expected(a, 1)) << "num_buffers is 1 in virtio 1.x";
    EXPECT_EQ(rxq.writable_data(h2, u2->len), expected(b, 1));
}

TEST_F(NetRxTest, WithoutMergeableTooSmallChainDropsPacketKeepsChain) {
    activate(all_net_features() & ~virtio::kNetFMrgRxbuf);
    uint16_t head = rxq.add_chain({{1000, true}});
    rxq.add_chain({{1000, true}});
    net->send(make_packet(2000, 1));  // cannot fit any one chain
    auto small = make_packet(500, 2);
    net->send(small);
    events.run_until_idle();
    auto u = rxq.pop_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->id, head) << "the first chain is reused for the next packet";
    EXPECT_EQ(rxq.writable_data(head, u->len), expected(small, 1));
    EXPECT_FALSE(rxq.pop_used());
    EXPECT_EQ(dev->stats().rx_dropped, 1u);
    EXPECT_EQ(dev->stats().rx_packets, 1u);
}

TEST_F(NetRxTest, NoBuffersLeavesPacketInBackendUntilNotify) {
    activate();
    auto packet = make_packet(700, 8);
    net->send(packet);
    events.run_until_idle();
    EXPECT_TRUE(net->device_readable()) << "packet not taken without a guest buffer";
    EXPECT_FALSE(interest() & EPOLLIN) << "stopped polling the backend, so the loop cannot spin";
    EXPECT_EQ(events.run_until_idle(), 0u);
    EXPECT_EQ(dev->stats().rx_dropped, 0u);
    // --stats tells why nothing arrives: the guest gave no buffers.
    auto counter = [&](std::string_view name) { return test::counter(dev->counters(), name); };
    EXPECT_EQ(counter("rx_waiting_for_buffers"), 1u);
    EXPECT_EQ(counter("rx_packets"), 0u);

    uint16_t head = rxq.add_chain({{2048, true}});
    rxq.add_chain({{2048, true}});  // a spare, so the device keeps polling afterwards
    dev->queue_notify(VirtioNet::kRxQueue);
    auto u = rxq.pop_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->id, head);
    EXPECT_EQ(rxq.writable_data(head, u->len), expected(packet, 1));
    EXPECT_TRUE(interest() & EPOLLIN) << "polling again";
    EXPECT_FALSE(net->device_readable());
    EXPECT_EQ(counter("rx_waiting_for_buffers"), 0u);
    EXPECT_EQ(counter("rx_packets"), 1u);
    EXPECT_EQ(counter("rx_bytes"), packet.size() - kVnetHdrSize);
}

// Unlike TX, RX decides about the interrupt once per batch: a driver asking
// for the first packet hears of all three at once (bench/io: per-packet
// decisions cost 60 % more interrupts for the same throughput).
TEST_F(NetRxTest, InterruptIsDecidedOncePerBatch) {
    activate(all_net_features() | virtio::kFRingEventIdx, /*event_idx=*/true);
    rxq.set_used_event(0);
    for (int i = 0; i < 4; ++i) rxq.add_chain({{2048, true}});
    std::vector<uint16_t> used_at_signal;
    irq->on_signal = [&](uint16_t) { used_at_signal.push_back(rxq.used_idx()); };
    for (uint8_t i = 0; i < 3; ++i) net->send(make_packet(500, i));
    events.run_until_idle();
    EXPECT_EQ(dev->stats().rx_packets, 3u);
    EXPECT_EQ(used_at_signal, std::vector<uint16_t>{3});
}

TEST_F(NetRxTest, MergeableWaitsForEnoughBuffers) {
    activate();
    uint16_t h1 = rxq.add_chain({{1000, true}});
    auto packet = make_packet(2500, 5);
    net->send(packet);
    events.run_until_idle();
    EXPECT_FALSE(rxq.pop_used()) << "a partial packet is never published";
    EXPECT_FALSE(interest() & EPOLLIN);

    uint16_t h2 = rxq.add_chain({{4000, true}});
    dev->queue_notify(VirtioNet::kRxQueue);
    std::vector<UsedElem> elems;
    auto got = collect(2, &elems);
    ASSERT_EQ(elems.size(), 2u);
    EXPECT_EQ(elems[0], (UsedElem{h1, 1000}));
    EXPECT_EQ(elems[1], (UsedElem{h2, 1512}));
    EXPECT_EQ(got, expected(packet, 2));
    EXPECT_EQ(dev->stats().rx_dropped, 0u);
}

TEST_F(NetRxTest, RingFullOfTinyBuffersDropsTheOversizedPacket) {
    activate();
    for (int i = 0; i < 256; ++i) rxq.add_chain({{12, true}});
    net->send(make_packet(4000));    // needs more than 256 * 12 bytes
    auto small = make_packet(0, 1);  // header only: fits one chain
    net->send(small);
    events.run_until_idle();
    EXPECT_EQ(dev->stats().rx_dropped, 1u);
    auto u = rxq.pop_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->len, 12u);
    EXPECT_EQ(dev->stats().rx_packets, 1u);
}

TEST_F(NetRxTest, UnusableRxChainsAreReturnedEmpty) {
    activate();
    uint16_t readable = rxq.add_chain({{"oops", false}, {100, true}});
    uint16_t tiny = rxq.add_chain({{8, true}});
    uint16_t good = rxq.add_chain({{2000, true}});
    net->send(make_packet(100));
    events.run_until_idle();
    std::vector<UsedElem> elems;
    while (auto u = rxq.pop_used()) elems.push_back(*u);
    ASSERT_EQ(elems.size(), 3u);
    EXPECT_EQ(elems[0], (UsedElem{readable, 0}));
    EXPECT_EQ(elems[1], (UsedElem{tiny, 0}));
    EXPECT_EQ(elems[2], (UsedElem{good, 112}));
    EXPECT_EQ(dev->stats().rx_errors, 2u);
}

TEST_F(NetRxTest, ChecksumFlagsClearedWithoutGuestCsum) {
    activate(virtio::kFVersion1 | virtio::kNetFMrgRxbuf);
    rxq.add_chain({{2000, true}});
    net->send(make_packet(100, 1, kVnetFlagDataValid));
    events.run_until_idle();
    auto u = rxq.pop_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(rxq.writable_data(static_cast<uint16_t>(u->id), u->len)[0], 0u);
}

TEST_F(NetRxTest, ChecksumFlagsKeptWithGuestCsum) {
    activate();
    rxq.add_chain({{2000, true}});
    net->send(make_packet(100, 1, kVnetFlagNeedsCsum));
    events.run_until_idle();
    auto u = rxq.pop_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(rxq.writable_data(static_cast<uint16_t>(u->id), u->len)[0], kVnetFlagNeedsCsum);
}

TEST_F(NetRxTest, GsoPacketTheGuestCannotTakeIsDropped) {
    activate(virtio::kFVersion1 | virtio::kNetFMrgRxbuf | virtio::kNetFGuestCsum);
    rxq.add_chain({{4000, true}});
    net->send(make_packet(3000, 1, kVnetFlagNeedsCsum, kVnetGsoTcpv4));
    auto ok = make_packet(100, 2);
    net->send(ok);
    events.run_until_idle();
    EXPECT_EQ(dev->stats().rx_dropped, 1u);
    auto u = rxq.pop_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(rxq.writable_data(static_cast<uint16_t>(u->id), u->len), expected(ok, 1));
}

TEST_F(NetRxTest, BackendHangupStopsPolling) {
    activate();
    rxq.add_chain({{2000, true}});
    net->peer.reset();
    EXPECT_LT(events.run_until_idle(), 5u) << "must not spin on a dead backend";
    EXPECT_EQ(interest(), 0u);
    EXPECT_FALSE(dev->needs_reset());
}

}  // namespace
}  // namespace rv::test
