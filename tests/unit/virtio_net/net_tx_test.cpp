// virtio-net TX: guest chains reach the backend intact, bad chains are
// returned and counted, a full backend holds chains back instead of dropping.
#include <sys/socket.h>

#include "unit/virtio_net/net_fixture.h"

namespace rv::test {
namespace {

using virtio::VirtioNet;

std::vector<uint8_t> slice(const std::vector<uint8_t>& v, size_t from, size_t to) {
    return {v.begin() + static_cast<long>(from), v.begin() + static_cast<long>(to)};
}

class NetTxTest : public NetTest {};

TEST_F(NetTxTest, SingleBufferFrameArrivesWithHeader) {
    activate();
    auto packet = make_packet(1500, 3, kVnetFlagNeedsCsum);
    uint16_t head = txq.add_chain({{packet, false}});
    dev->queue_notify(VirtioNet::kTxQueue);

    auto got = net->receive();
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, packet);
    EXPECT_FALSE(net->receive()) << "exactly one packet";
    auto used = txq.pop_used();
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, head);
    EXPECT_EQ(used->len, 0u);
    EXPECT_EQ(irq->used_count(VirtioNet::kTxQueue), 1u);
    auto s = dev->stats();
    EXPECT_EQ(s.tx_packets, 1u);
    EXPECT_EQ(s.tx_bytes, 1500u);
    EXPECT_EQ(s.tx_errors, 0u);
}

TEST_F(NetTxTest, MultiBufferFramesAreGatheredInOrder) {
    activate();
    // Header alone, then the frame in uneven pieces: how Linux lays out skbs.
    auto p1 = make_packet(3000, 9);
    txq.add_chain({{slice(p1, 0, 12), false},
                   {slice(p1, 12, 100), false},
                   {slice(p1, 100, 2100), false},
                   {slice(p1, 2100, p1.size()), false}});
    // A second packet whose header is split across buffers.
    auto p2 = make_packet(64, 77);
    txq.add_indirect_chain({{slice(p2, 0, 5), false}, {slice(p2, 5, p2.size()), false}});
    dev->queue_notify(VirtioNet::kTxQueue);

    auto got1 = net->receive();
    auto got2 = net->receive();
    ASSERT_TRUE(got1 && got2);
    EXPECT_EQ(*got1, p1);
    EXPECT_EQ(*got2, p2);
    EXPECT_TRUE(txq.pop_used());
    EXPECT_TRUE(txq.pop_used());
    EXPECT_EQ(dev->stats().tx_packets, 2u);
    EXPECT_EQ(dev->stats().tx_bytes, 3064u);
    EXPECT_EQ(irq->used_count(VirtioNet::kTxQueue), 1u) << "one interrupt per batch";
}

TEST_F(NetTxTest, LargestFrameIsSent) {
    // SEQPACKET needs a send buffer that fits one 64 KiB packet.
    int size = 256 << 10;
    ASSERT_EQ(::setsockopt(net->device_end.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)), 0);
    activate();
    auto packet = make_packet(virtio::kNetMaxFrameLen, 5, kVnetFlagNeedsCsum, kVnetGsoTcpv4);
    txq.add_chain({{slice(packet, 0, 40000), false}, {slice(packet, 40000, packet.size()), false}});
    dev->queue_notify(VirtioNet::kTxQueue);
    auto got = net->receive();
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, packet);
}

TEST_F(NetTxTest, MalformedChainsAreReturnedAndCounted) {
    activate();
    uint16_t short_head = txq.add_chain({{std::vector<uint8_t>(8, 0xaa), false}});
    uint16_t writable_head = txq.add_chain({{make_packet(60), false}, {100, true}});
    auto huge = make_packet(virtio::kNetMaxFrameLen + 1);
    uint16_t huge_head = txq.add_chain({{huge, false}});
    auto good = make_packet(60, 42);
    uint16_t good_head = txq.add_chain({{good, false}});
    dev->queue_notify(VirtioNet::kTxQueue);

    auto got = net->receive();
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, good) << "only the well-formed packet reaches the backend";
    EXPECT_FALSE(net->receive());
    std::vector<uint32_t> ids;
    while (auto u = txq.pop_used()) {
        ids.push_back(u->id);
        EXPECT_EQ(u->len, 0u);
    }
    EXPECT_EQ(ids, (std::vector<uint32_t>{short_head, writable_head, huge_head, good_head}));
    auto s = dev->stats();
    EXPECT_EQ(s.tx_errors, 3u);
    EXPECT_EQ(s.tx_packets, 1u);
    EXPECT_FALSE(dev->needs_reset()) << "bad chains are the guest's problem, not a broken ring";
}

TEST_F(NetTxTest, FullBackendHoldsChainsUntilWritable) {
    activate();
    // Fill the socket so the next send would block.
    std::vector<uint8_t> filler(1000, 0);
    size_t filled = 0;
    while (::send(net->device_end.get(), filler.data(), filler.size(), MSG_DONTWAIT) > 0) ++filled;
    ASSERT_GT(filled, 0u);

    auto p1 = make_packet(200, 1);
    auto p2 = make_packet(300, 2);
    txq.add_chain({{p1, false}});
    txq.add_chain({{p2, false}});
    dev->queue_notify(VirtioNet::kTxQueue);

    EXPECT_FALSE(txq.pop_used()) << "the chain stays with the device, not dropped";
    EXPECT_TRUE(interest() & EPOLLOUT) << "waits for the backend to drain";
    EXPECT_EQ(dev->stats().tx_backpressure, 1u);
    EXPECT_EQ(dev->stats().tx_dropped, 0u);
    // Another kick while blocked changes nothing.
    dev->queue_notify(VirtioNet::kTxQueue);
    EXPECT_FALSE(txq.pop_used());

    for (size_t i = 0; i < filled; ++i) ASSERT_TRUE(net->receive());
    events.run_until_idle();

    auto got1 = net->receive();
    auto got2 = net->receive();
    ASSERT_TRUE(got1 && got2);
    EXPECT_EQ(*got1, p1);
    EXPECT_EQ(*got2, p2);
    EXPECT_TRUE(txq.pop_used());
    EXPECT_TRUE(txq.pop_used());
    EXPECT_FALSE(interest() & EPOLLOUT) << "EPOLLOUT only while blocked";
    EXPECT_TRUE(interest() & EPOLLIN);
    EXPECT_EQ(dev->stats().tx_packets, 2u);
}

TEST_F(NetTxTest, EventIdxAsksForTheNextKick) {
    activate(all_net_features() | virtio::kFRingEventIdx, /*event_idx=*/true);
    txq.add_chain({{make_packet(60), false}});
    txq.add_chain({{make_packet(60), false}});
    dev->queue_notify(VirtioNet::kTxQueue);
    EXPECT_EQ(dev->stats().tx_packets, 2u);
    EXPECT_EQ(txq.avail_event(), 2u) << "driver must kick once it publishes past entry 2";
}

// The interrupt is decided per chain: a driver whose used_event asks for the
// first completion gets it while the rest of the burst is still going out
// (at that moment the used ring holds one chain), and only once.
TEST_F(NetTxTest, InterruptComesAtTheChainTheDriverAskedFor) {
    activate(all_net_features() | virtio::kFRingEventIdx, /*event_idx=*/true);
    txq.set_used_event(0);  // interrupt once used idx passes 0
    for (int i = 0; i < 3; ++i) txq.add_chain({{make_packet(60), false}});
    std::vector<uint16_t> used_at_signal;
    irq->on_signal = [&](uint16_t) { used_at_signal.push_back(txq.used_idx()); };
    dev->queue_notify(VirtioNet::kTxQueue);
    EXPECT_EQ(dev->stats().tx_packets, 3u);
    EXPECT_EQ(used_at_signal, std::vector<uint16_t>{1});
}

// A frame straddling two guest memory regions goes out as two iovecs.
class NetTxTwoRegionTest : public NetTest {
  protected:
    static GuestMemory two_regions() {
        std::array<GuestMemory::RegionSpec, 2> specs{
            GuestMemory::RegionSpec{GuestAddress(0), 8 << 20},
            GuestMemory::RegionSpec{GuestAddress(8 << 20), 8 << 20}};
        auto m = GuestMemory::create(specs);
        if (!m) throw std::runtime_error(m.error().message());
        return std::move(*m);
    }
    NetTxTwoRegionTest() : NetTest(two_regions()) {}
};

TEST_F(NetTxTwoRegionTest, FrameAcrossRegionsArrivesIntact) {
    ASSERT_EQ(mem.regions().size(), 2u);
    activate();
    auto packet = make_packet(4000, 11);
    // Place the buffer by hand so it starts 1000 bytes before the boundary.
    GuestAddress at((8 << 20) - 1000);
    // (build_chain first: its placeholder buffer lands at the region boundary)
    uint16_t head = txq.build_chain({{16, false}});
    txq.write_data(at, packet);
    txq.set_desc(head, {at.value, static_cast<uint32_t>(packet.size()), 0, 0});
    txq.publish(head);
    dev->queue_notify(VirtioNet::kTxQueue);
    auto got = net->receive();
    ASSERT_TRUE(got);
    ASSERT_EQ(got->size(), packet.size());
    for (size_t i = 0; i < packet.size(); ++i) ASSERT_EQ((*got)[i], packet[i]) << "byte " << i;
}

TEST_F(NetTxTwoRegionTest, GuestIovecsSplitAtRegionEnds) {
    std::vector<iovec> iov;
    ASSERT_TRUE(mem.append_iovecs(GuestAddress((8 << 20) - 1000), 4000, iov));
    ASSERT_EQ(iov.size(), 2u);
    EXPECT_EQ(iov[0].iov_len, 1000u);
    EXPECT_EQ(iov[1].iov_len, 3000u);
    EXPECT_EQ(iov[1].iov_base, mem.regions()[1].host);
    // Running off the end of RAM fails and appends nothing.
    EXPECT_FALSE(mem.append_iovecs(GuestAddress((16 << 20) - 10), 20, iov));
    EXPECT_EQ(iov.size(), 2u);
    EXPECT_TRUE(mem.append_iovecs(GuestAddress(0), 0, iov));
    EXPECT_EQ(iov.size(), 2u) << "an empty buffer adds no iovec";
}

}  // namespace
}  // namespace rv::test
