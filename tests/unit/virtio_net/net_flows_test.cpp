// Flow pinning on a multi-queue NIC (net_flows.h): what classify_tx makes of
// a TX packet's first bytes, FlowQueues' choice of pair, and the device
// sending a flow's pure ACKs by the queue the flow last sent data from.
#include "devices/virtio/net/net_flows.h"

#include "unit/virtio_net/net_mq_fixture.h"

namespace rv::test {
namespace {

using namespace virtio;
using Bytes = std::vector<uint8_t>;

void put16(Bytes& b, size_t at, uint32_t v) {
    b[at] = static_cast<uint8_t>(v >> 8);
    b[at + 1] = static_cast<uint8_t>(v);
}

constexpr uint8_t kAck = 0x10, kPsh = 0x08, kSyn = 0x02, kFin = 0x01, kRst = 0x04;

// Virtio-net header, Ethernet, IPv4 (20 bytes, or 24 with an option) and a
// TCP header with timestamps (32 bytes), then `payload` bytes.
Bytes tcp4(uint16_t sport, uint16_t dport, uint8_t flags, size_t payload, uint8_t gso = 0,
           bool ip_option = false, uint16_t frag = 0) {
    const size_t ihl = ip_option ? 24 : 20, l4 = 12 + 14 + ihl;
    Bytes b(l4 + 32 + payload, 0);
    b[1] = gso;
    put16(b, 12 + 12, 0x0800);
    b[26] = static_cast<uint8_t>(0x40 | ihl / 4);
    put16(b, 28, static_cast<uint32_t>(ihl + 32 + payload));
    put16(b, 32, frag);
    b[35] = 6;
    b[38] = 10, b[41] = 15;  // 10.0.6.15 -> 10.0.6.1
    b[42] = 10, b[45] = 1;
    b[40] = b[44] = 6;
    put16(b, l4, sport);
    put16(b, l4 + 2, dport);
    b[l4 + 12] = 8 << 4;
    b[l4 + 13] = flags;
    return b;
}

Bytes tcp6(uint8_t flags, size_t payload) {
    const size_t l4 = 12 + 14 + 40;
    Bytes b(l4 + 20 + payload, 0);
    put16(b, 24, 0x86dd);
    b[26] = 0x60;
    put16(b, 30, static_cast<uint32_t>(20 + payload));
    b[32] = 6;
    b[34] = 0xfd, b[49] = 15, b[50] = 0xfd, b[65] = 1;
    put16(b, l4, 40000);
    put16(b, l4 + 2, 5201);
    b[l4 + 12] = 5 << 4;
    b[l4 + 13] = flags;
    return b;
}

TEST(NetFlowsClassify, APureAckIsAFlowAndPure) {
    TxFlow f = classify_tx(tcp4(40000, 5201, kAck, 0));
    EXPECT_TRUE(f.flow);
    EXPECT_TRUE(f.pure_ack);
    EXPECT_TRUE(classify_tx(tcp4(40000, 5201, kAck, 0, 0, true)).pure_ack) << "IP options";
    EXPECT_TRUE(classify_tx(tcp6(kAck, 0)).pure_ack);
}

TEST(NetFlowsClassify, DataSynFinRstAndGsoAreNotPureAcks) {
    for (const Bytes& b : {tcp4(40000, 5201, kAck | kPsh, 100), tcp4(40000, 5201, kSyn, 0),
                           tcp4(40000, 5201, kAck | kFin, 0), tcp4(40000, 5201, kRst, 0),
                           tcp4(40000, 5201, kAck, 0, kVnetGsoTcpv4), tcp6(kAck, 1)}) {
        TxFlow f = classify_tx(b);
        EXPECT_TRUE(f.flow);
        EXPECT_FALSE(f.pure_ack);
    }
}

TEST(NetFlowsClassify, TheKeyNamesTheFlow) {
    const uint32_t key = classify_tx(tcp4(40000, 5201, kAck, 0)).key;
    EXPECT_EQ(classify_tx(tcp4(40000, 5201, kAck | kPsh, 1000)).key, key) << "same flow";
    EXPECT_NE(classify_tx(tcp4(40001, 5201, kAck, 0)).key, key);
    EXPECT_NE(classify_tx(tcp4(40000, 5202, kAck, 0)).key, key);
}

TEST(NetFlowsClassify, OtherPacketsAreNoFlow) {
    Bytes arp(12 + 42, 0);
    put16(arp, 24, 0x0806);
    EXPECT_FALSE(classify_tx(arp).flow);
    EXPECT_FALSE(classify_tx(tcp4(40000, 5201, kAck, 0, 0, false, 0x2000)).flow) << "fragment";
    Bytes cut = tcp4(40000, 5201, kAck, 0);
    cut.resize(12 + 14 + 20 + 2);
    EXPECT_FALSE(classify_tx(cut).flow) << "cut inside the ports";
    Bytes icmp = tcp4(40000, 5201, kAck, 0);
    icmp[35] = 1;
    EXPECT_FALSE(classify_tx(icmp).flow);
    Bytes bad_ihl = tcp4(40000, 5201, kAck, 0);
    bad_ihl[26] = 0x42;
    EXPECT_FALSE(classify_tx(bad_ihl).flow);
    EXPECT_FALSE(classify_tx(Bytes(20, 0)).flow);
    EXPECT_FALSE(classify_tx({}).flow);
}

TEST(NetFlowsPick, PureAcksFollowTheLastDataAndEverythingElseItsOwnPair) {
    FlowQueues q;
    const TxFlow data{.flow = true, .pure_ack = false, .key = 7};
    const TxFlow ack{.flow = true, .pure_ack = true, .key = 7};
    EXPECT_EQ(q.pick(ack, 0, 2), 0u) << "a new flow: its own pair, which it is pinned to";
    EXPECT_EQ(q.pick(ack, 1, 2), 0u);
    EXPECT_EQ(q.pick(data, 1, 2), 1u) << "data moves the flow";
    EXPECT_EQ(q.pick(ack, 0, 2), 1u);
    EXPECT_EQ(q.pick(ack, 0, 1), 0u) << "pinned to a pair no longer served";
    EXPECT_EQ(q.pick(TxFlow{}, 1, 2), 1u) << "no flow";
    q.clear();
    EXPECT_EQ(q.pick(ack, 1, 2), 1u);
}

TEST_F(NetMqTest, AFlowsPureAcksLeaveByTheQueueItLastSentDataFrom) {
    activate();
    ASSERT_EQ(set_pairs(2), kNetCtrlOk);
    auto send = [&](unsigned pair, const Bytes& packet) {
        txq(pair).add_chain({{packet, false}});
        dev->queue_notify(VirtioNet::tx_queue(pair));
        ASSERT_TRUE(txq(pair).pop_used());
    };
    const Bytes data = tcp4(40000, 5201, kAck | kPsh, 500);
    const Bytes ack = tcp4(40000, 5201, kAck, 0);
    send(1, data);
    EXPECT_EQ(nets[1]->receive(), data);
    send(0, ack);  // sent on pair 0, out by pair 1's queue
    EXPECT_EQ(nets[1]->receive(), ack);
    EXPECT_FALSE(nets[0]->receive());
    send(0, data);  // the flow moves
    send(1, ack);
    EXPECT_EQ(nets[0]->receive(), data);
    EXPECT_EQ(nets[0]->receive(), ack);
    EXPECT_FALSE(nets[1]->receive());
    // Another flow's ACK, and anything not TCP or UDP, by its own queue.
    const Bytes other = tcp4(40001, 5201, kAck, 0);
    send(1, other);
    EXPECT_EQ(nets[1]->receive(), other);
    const Bytes opaque = make_packet(300, 1);
    send(0, opaque);
    EXPECT_EQ(nets[0]->receive(), opaque);
}

}  // namespace
}  // namespace rv::test
