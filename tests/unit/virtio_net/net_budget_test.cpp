// virtio-net fairness: a guest that keeps its TX ring full, or a host that
// keeps the tap full, cannot hold the event loop in one pass. A pass handles
// about a ring's worth of work, then yields; the rest is done on later
// event-loop turns (the registrar double runs them level-triggered, like the
// real loop), in order, with nothing lost and nothing stalled.
#include <cstring>

#include "support/device_counters.h"
#include "unit/virtio_net/net_fixture.h"

namespace rv::test {
namespace {

using virtio::VirtioNet;

// A packet whose frame starts with its sequence number.
std::vector<uint8_t> numbered_packet(uint32_t seq, size_t frame_len = 60) {
    auto p = make_packet(frame_len, static_cast<uint8_t>(seq));
    std::memcpy(p.data() + kVnetHdrSize, &seq, sizeof(seq));
    return p;
}

// The packet as an RX guest sees it: num_buffers filled in.
std::vector<uint8_t> with_num_buffers(std::vector<uint8_t> packet, uint16_t n) {
    packet[kVnetHdrNumBuffersOffset] = static_cast<uint8_t>(n);
    packet[kVnetHdrNumBuffersOffset + 1] = static_cast<uint8_t>(n >> 8);
    return packet;
}

class NetBudgetTest : public NetTest {
  protected:
    // TX: the driver republishes a packet for every one the device sends (a
    // guest on another vCPU keeping the ring full) until `total` are out,
    // and the host reads the tap as fast, so backpressure never ends a pass.
    void flood_tx(size_t total, bool event_idx) {
        activate(all_net_features() | (event_idx ? virtio::kFRingEventIdx : 0), event_idx);
        net->on_device_write = [this, total, event_idx] {
            while (auto p = net->receive()) m_received.push_back(std::move(*p));
            while (txq.pop_used()) {
            }
            if (event_idx) txq.set_used_event(txq.used_idx());  // an interrupt per chain
            if (m_published < total) publish_tx();
        };
        for (int i = 0; i < 32; ++i) publish_tx();

        dev->queue_notify(VirtioNet::kTxQueue);
        const uint64_t first_pass = dev->stats().tx_packets;
        EXPECT_LE(first_pass, VirtioNet::kQueueSize)
            << "one queue_notify sent " << first_pass << " packets: a guest refilling the ring "
            << "holds the event loop for as long as it likes";
        EXPECT_LT(first_pass, total);

        const size_t turns = events.run_until_idle(1000);
        EXPECT_GT(turns, 1u) << "the rest is done over several event-loop turns";
        EXPECT_LT(turns, 1000u) << "and they end";
        for (auto& p : net->receive_all()) m_received.push_back(std::move(p));
        ASSERT_EQ(m_received.size(), total) << "packets lost or stalled";
        for (uint32_t i = 0; i < total; ++i)
            ASSERT_EQ(m_received[i], numbered_packet(i)) << "packet " << i;
        EXPECT_EQ(dev->stats().tx_packets, total);
        while (txq.pop_used()) {
        }
        EXPECT_EQ(txq.free_descriptors(), txq.size()) << "every chain returned";

        // Not stalled: the device asked for a kick again and serves the next one.
        net->on_device_write = nullptr;
        txq.add_chain({{numbered_packet(99999), false}});
        dev->queue_notify(VirtioNet::kTxQueue);
        auto last = net->receive();
        ASSERT_TRUE(last);
        EXPECT_EQ(*last, numbered_packet(99999));
    }

    void publish_tx() {
        txq.add_chain({{numbered_packet(static_cast<uint32_t>(m_published)), false}});
        ++m_published;
    }

    size_t m_published{0};
    std::vector<std::vector<uint8_t>> m_received;
};

TEST_F(NetBudgetTest, RefillingTxDriverCannotHoldOneNotify) {
    flood_tx(1000, /*event_idx=*/false);
}

TEST_F(NetBudgetTest, RefillingTxDriverCannotHoldOneNotifyWithEventIdx) {
    flood_tx(1000, /*event_idx=*/true);
}

// RX: the host sends another packet for every one the device reads (a tap
// that never runs dry) and the driver recycles every used buffer at once.
TEST_F(NetBudgetTest, FloodingHostCannotHoldOneEventLoopTurn) {
    activate();
    constexpr size_t kTotal = 2000;
    size_t sent = 0;
    std::vector<std::vector<uint8_t>> delivered;
    auto host_send = [&] {
        if (!net->send(numbered_packet(static_cast<uint32_t>(sent), 100)))
            throw std::runtime_error("socketpair full");
        ++sent;
    };
    auto recycle = [&] {
        while (auto u = rxq.pop_used()) {
            delivered.push_back(rxq.writable_data(static_cast<uint16_t>(u->id), u->len));
            rxq.add_chain({{2048, true}});
        }
    };
    net->on_device_read = [&] {
        recycle();
        if (sent < kTotal) host_send();
    };
    for (int i = 0; i < 256; ++i) rxq.add_chain({{2048, true}});
    for (int i = 0; i < 16; ++i) host_send();

    EXPECT_EQ(events.run_ready(), 1u) << "one event-loop turn: the tap is readable";
    const uint64_t first_turn = dev->stats().rx_packets;
    EXPECT_LE(first_turn, VirtioNet::kQueueSize)
        << "one event-loop turn delivered " << first_turn << " packets: a flooding host holds "
        << "the event loop for as long as it sends";
    EXPECT_LT(first_turn, kTotal);

    const size_t turns = events.run_until_idle(1000);
    EXPECT_LT(turns, 1000u);
    recycle();
    ASSERT_EQ(delivered.size(), kTotal) << "packets lost or stalled";
    for (uint32_t i = 0; i < kTotal; ++i)
        ASSERT_EQ(delivered[i], with_num_buffers(numbered_packet(i, 100), 1)) << "packet " << i;
    EXPECT_EQ(dev->stats().rx_dropped, 0u);
    EXPECT_FALSE(net->device_readable());
    EXPECT_TRUE(interest() & EPOLLIN) << "still polling the tap";
}

// A pass may stop in the middle of a packet that needs many buffers: the
// packet and the buffers already taken for it wait for the next turn.
TEST_F(NetBudgetTest, PacketSpanningTheEndOfAPassArrivesIntact) {
    activate();
    size_t sent = 0;
    std::vector<uint8_t> big = numbered_packet(7777, 1500);  // 126 buffers of 12 bytes
    std::vector<std::vector<uint8_t>> script;
    // Header-only packets, one 12-byte buffer each (2 units: a chain and a
    // read), leave fewer units than the big packet needs (127).
    const uint32_t small = VirtioNet::kRxBudget / 2 - 56;
    for (uint32_t i = 0; i < small; ++i) script.push_back(make_packet(0, static_cast<uint8_t>(i)));
    script.push_back(big);
    script.push_back(make_packet(0, 88));
    std::vector<UsedElem> used;
    std::vector<uint8_t> bytes;
    auto recycle = [&] {
        while (auto u = rxq.pop_used()) {
            used.push_back(*u);
            auto part = rxq.writable_data(static_cast<uint16_t>(u->id), u->len);
            bytes.insert(bytes.end(), part.begin(), part.end());
            rxq.add_chain({{12, true}});
        }
    };
    net->on_device_read = [&] {
        recycle();
        if (sent < script.size()) {
            ASSERT_TRUE(net->send(script[sent++]));
        }
    };
    for (int i = 0; i < 256; ++i) rxq.add_chain({{12, true}});
    ASSERT_TRUE(net->send(script[sent++]));

    EXPECT_EQ(events.run_ready(), 1u);
    EXPECT_EQ(dev->stats().rx_packets, small) << "the pass stopped inside the big packet";
    EXPECT_EQ(counter(dev->counters(), "rx_held_packet"), 1u);
    EXPECT_EQ(dev->stats().budget_yields, 1u);
    events.run_until_idle(1000);
    recycle();
    EXPECT_EQ(dev->stats().rx_dropped, 0u);
    EXPECT_EQ(dev->stats().rx_packets, script.size());
    std::vector<uint8_t> expected;
    for (const auto& p : script) {
        auto seen = with_num_buffers(p, static_cast<uint16_t>((p.size() + 11) / 12));
        expected.insert(expected.end(), seen.begin(), seen.end());
    }
    EXPECT_EQ(bytes, expected);
}

// A reset while a budgeted pass has work left: nothing more is processed
// (the device no longer owns the rings), and a new activation starts clean.
TEST_F(NetBudgetTest, ResetDropsTheResumption) {
    activate();
    size_t published = 0;
    net->on_device_write = [&] {
        while (net->receive()) {
        }
        while (txq.pop_used()) {
        }
        if (published++ < 1000) txq.add_chain({{make_packet(60), false}});
    };
    for (int i = 0; i < 32; ++i) txq.add_chain({{make_packet(60), false}});
    dev->queue_notify(VirtioNet::kTxQueue);
    const uint64_t sent = dev->stats().tx_packets;
    ASSERT_LT(sent, 1000u);
    ASSERT_EQ(counter(dev->counters(), "tx_resume_pending"), 1u);
    dev->reset();
    EXPECT_EQ(events.run_until_idle(), 0u) << "nothing registered after reset";
    EXPECT_EQ(dev->stats().tx_packets, sent);
    net->on_device_write = nullptr;
    EXPECT_TRUE(try_activate(all_net_features()));
    EXPECT_EQ(events.run_until_idle(), 0u) << "no stale resumption after re-activation";
}

}  // namespace
}  // namespace rv::test
