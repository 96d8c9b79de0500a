// virtio-net RX: packets split over mergeable buffers with num_buffers set,
// whole packets into big buffers otherwise, and a slow guest never loses a
// packet: it waits in the backend. With buffers enough for the largest
// packet, packets are read straight into them: the same chains, lengths,
// bytes and header rewriting as through the bounce buffer, the bytes marked
// dirty, and a packet too long or with offloads the guest did not take
// dropped without returning a chain.
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
    // Sends `bad`, then `ok`: the device must drop the first and deliver the
    // second, alone, into one chain; returns that chain's used element.
    UsedElem drop_then_deliver(const std::vector<uint8_t>& bad, const std::vector<uint8_t>& ok) {
        net->send(bad);
        net->send(ok);
        events.run_until_idle();
        EXPECT_EQ(dev->stats().rx_dropped, 1u);
        auto u = rxq.pop_used();
        if (!u) {
            ADD_FAILURE() << "nothing delivered";
            return {};
        }
        EXPECT_EQ(rxq.writable_data(static_cast<uint16_t>(u->id), u->len), expected(ok, 1));
        EXPECT_FALSE(rxq.pop_used());
        return *u;
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
    EXPECT_EQ(s.rx_in_place, 0u) << "4000 bytes of buffers cannot take every packet";
}

// 20 buffers of 4 KiB hold the largest packet (65565 bytes with its header).
TEST_F(NetRxTest, PacketsAreReadStraightIntoBuffersThatHoldTheLargest) {
    activate(all_net_features() & ~virtio::kNetFGuestCsum & ~virtio::kNetFGuestTso4 &
             ~virtio::kNetFGuestTso6 & ~virtio::kNetFGuestEcn);
    std::vector<uint16_t> heads;
    for (int i = 0; i < 40; ++i) heads.push_back(rxq.add_chain({{4096, true}}));
    auto a = make_packet(9000, 1, kVnetFlagDataValid);  // 9012 bytes: 3 buffers
    auto b = make_packet(60, 2);                         // 1 buffer
    auto c = make_packet(virtio::kNetMaxFrameLen, 3);            // the largest: 17 buffers
    for (const auto& p : {a, b, c}) net->send(p);
    events.run_until_idle();

    std::vector<UsedElem> elems;
    auto got_a = collect(3, &elems);
    auto got_b = collect(1, &elems);
    auto got_c = collect(17, &elems);
    ASSERT_EQ(elems.size(), 21u);
    for (size_t i = 0; i < elems.size(); ++i) EXPECT_EQ(elems[i].id, heads[i]) << i;
    EXPECT_EQ(elems[2].len, 9012u - 2 * 4096);
    EXPECT_EQ(elems[3].len, 72u);
    EXPECT_EQ(elems[20].len, virtio::kNetMaxPacketLen - 16 * 4096);
    auto a_seen = expected(a, 3);
    a_seen[0] = 0;  // DATA_VALID means nothing without GUEST_CSUM: rewritten in place
    EXPECT_EQ(got_a, a_seen);
    EXPECT_EQ(got_b, expected(b, 1));
    EXPECT_EQ(got_c, expected(c, 17));
    EXPECT_FALSE(rxq.pop_used()) << "the other buffers stay available";
    auto s = dev->stats();
    EXPECT_EQ(s.rx_packets, 3u);
    EXPECT_EQ(s.rx_in_place, 3u);
    EXPECT_EQ(irq->used_count(VirtioNet::kRxQueue), 1u);
}

// Without MRG_RXBUF one chain must hold the largest packet.
TEST_F(NetRxTest, WithoutMergeableABigChainTakesThePacketStraight) {
    activate(all_net_features() & ~virtio::kNetFMrgRxbuf);
    uint16_t big = rxq.add_chain({{12, true}, {40000, true}, {40000, true}});
    rxq.add_chain({{12, true}, {40000, true}, {40000, true}});
    auto p = make_packet(50000, 7);
    net->send(p);
    events.run_until_idle();
    auto u = rxq.pop_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(*u, (UsedElem{big, 50012}));
    EXPECT_EQ(rxq.writable_data(big, u->len), expected(p, 1)) << "num_buffers is 1 in virtio 1.x";
    EXPECT_EQ(dev->stats().rx_in_place, 1u);
    EXPECT_FALSE(rxq.pop_used());
}

TEST_F(NetRxTest, InPlaceBytesAreMarkedDirty) {
    activate();
    for (int i = 0; i < 20; ++i) rxq.add_chain({{4096, true}});
    mem.set_dirty_tracking(true);
    (void)mem.take_dirty(0);
    net->send(make_packet(5000));  // 5012 bytes: 4096 + 916
    events.run_until_idle();
    std::vector<UsedElem> elems;
    (void)collect(2, &elems);
    ASSERT_EQ(elems.size(), 2u);
    ASSERT_EQ(dev->stats().rx_in_place, 1u);
    auto bits = mem.take_dirty(0);
    auto dirty = [&](uint64_t addr) {
        const uint64_t page = addr / GuestMemory::kDirtyPageSize;
        return (bits[page / 64] >> (page % 64)) & 1;
    };
    for (const UsedElem& e : elems) {
        const auto d = rxq.desc(static_cast<uint16_t>(e.id));
        EXPECT_TRUE(dirty(d.addr)) << "buffer at " << d.addr;
        EXPECT_TRUE(dirty(d.addr + e.len - 1)) << "buffer at " << d.addr;
    }
}

// Read in place and then found too long, a packet leaves the chains held
// and unreturned; the next packet takes them.
TEST_F(NetRxTest, APacketDroppedInPlaceReturnsNoChain) {
    activate();
    std::vector<uint16_t> heads;
    for (int i = 0; i < 20; ++i) heads.push_back(rxq.add_chain({{4096, true}}));
    // One byte too long, then one that fits.
    auto u = drop_then_deliver(make_packet(virtio::kNetMaxFrameLen + 1), make_packet(100, 2));
    EXPECT_EQ(u, (UsedElem{heads[0], 112}));
    EXPECT_EQ(dev->stats().rx_in_place, 1u);
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
    drop_then_deliver(make_packet(3000, 1, kVnetFlagNeedsCsum, kVnetGsoTcpv4), make_packet(100, 2));
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
