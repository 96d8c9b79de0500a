// The byte counters the accounting bills (issue 14): frames as they cross
// the TAP, as virtio-net counts them, so no FCS, no receive padding, and
// nothing for frames filtered, dropped or refused.
#include "support/device_counters.h"
#include "unit/e1000/e1000_fixture.h"

namespace rv::test {
namespace {

using namespace e1000;

constexpr uint8_t kEopRs = kTxCmdEop | kTxCmdIfcs | kTxCmdRs;

TEST_F(E1000Test, RxBytesCountDeliveredFramesWithoutFcsOrPadding) {
    setup_rx(8, 7);  // FCS appended for the guest (no SECRC)
    write32(reg::kCtrl, read32(reg::kCtrl) | kCtrlVme);
    inject(eth_frame(kMac, 100));  // 114 bytes
    events.run_until_idle();
    EXPECT_EQ(rx_desc(0).length, 118u);  // the guest gets the FCS; it is not billed
    inject(eth_frame(kMac, 28));         // 42 bytes, padded to 60 (+ FCS) for the guest
    events.run_until_idle();
    EXPECT_EQ(rx_desc(1).length, 64u);
    auto tagged = eth_frame(kMac, 104, 0x8100);  // 118 bytes; the tag goes to the descriptor
    put16(tagged, 14, 0x0007);
    put16(tagged, 16, 0x0800);
    inject(tagged);
    events.run_until_idle();
    EXPECT_EQ(rx_desc(2).length, 118u);  // 114 + FCS
    // Not billed: a frame for another address, and one too long without LPE.
    inject(eth_frame({0x02, 0x11, 0x22, 0x33, 0x44, 0x55}, 100));
    inject(eth_frame(kMac, 2000));
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 3u);

    const E1000Stats s = dev->stats();
    EXPECT_EQ(s.rx_packets, 3u);
    EXPECT_EQ(s.rx_bytes, 114u + 42u + 118u);
    EXPECT_EQ(s.rx_filtered, 1u);
    EXPECT_EQ(s.rx_dropped, 1u);
    const DeviceCounters c = dev->counters();
    EXPECT_EQ(counter(c, "rx_packets"), 3u);
    EXPECT_EQ(counter(c, "rx_bytes"), 274u);
}

// A frame the device holds for lack of descriptors is billed once it is in
// the ring, not when it was read from the TAP.
TEST_F(E1000Test, RxBytesWaitForTheFrameToReachTheRing) {
    setup_rx(8, 1, 3u << kRctlBsizeShift);  // one 256-byte buffer
    inject(eth_frame(kMac, 586));           // 600 bytes: needs three
    events.run_until_idle();
    EXPECT_FALSE(peer->device_readable());  // taken, and held by the device
    EXPECT_EQ(dev->stats().rx_bytes, 0u);
    write32(reg::kRdt, 3);  // delivered on the RDT write
    EXPECT_EQ(read32(reg::kRdh), 3u);
    EXPECT_EQ(dev->stats().rx_packets, 1u);
    EXPECT_EQ(dev->stats().rx_bytes, 600u);
}

TEST_F(E1000Test, TxBytesCountWhatTheBackendTook) {
    setup_tx(16);  // TCTL.PSP: short frames are padded to 60
    write32(reg::kCtrl, read32(reg::kCtrl) | kCtrlVme);
    auto plain = eth_frame(kPeerMac, 86);  // 100 bytes
    put_tx(legacy_desc(tx_data(plain), 100, kEopRs));
    auto multi = eth_frame(kPeerMac, 1000);  // 1014 bytes in three descriptors
    std::span<const uint8_t> m(multi);
    put_tx(legacy_desc(tx_data(m.first(14)), 14, kTxCmdIfcs));
    put_tx(legacy_desc(tx_data(m.subspan(14, 500)), 500, kTxCmdIfcs));
    put_tx(legacy_desc(tx_data(m.subspan(514)), 500, kEopRs));
    auto small = eth_frame(kPeerMac, 28);  // 42 bytes, goes out as 60
    put_tx(legacy_desc(tx_data(small), 42, kEopRs));
    auto vlan = eth_frame(kPeerMac, 100);  // 114 bytes, goes out tagged: 118
    auto d = legacy_desc(tx_data(vlan), 114, kEopRs | kTxCmdVle);
    d[14] = 0x05;
    put_tx(d);
    // A TSO packet is one frame to the TAP (it segments), billed as such.
    auto tso = tcp_frame(4000, 1, 0x18, true);  // 4054 bytes
    TxContext ctx{.ipcss = kIpOff,
                  .ipcso = kIpOff + 10,
                  .ipcse = kTcpOff - 1,
                  .tucss = kTcpOff,
                  .tucso = kTcpOff + 16,
                  .paylen = 4000,
                  .tucmd = kTuCmdTcp | kTuCmdIp | kTxCmdTse,
                  .hdr_len = kTcpHdrEnd,
                  .mss = 1448};
    put_tx(context_desc(ctx));
    put_tx(data_desc(tx_data(tso), static_cast<uint32_t>(tso.size()), kEopRs | kTxCmdTse,
                     kTxPoptsIxsm | kTxPoptsTxsm));
    // Not billed: a buffer outside guest RAM drops its frame.
    put_tx(legacy_desc(0xFFFFFFFF00ull, 100, kEopRs));
    testing::internal::CaptureStderr();
    kick_tx();
    (void)testing::internal::GetCapturedStderr();

    auto sent = sent_packets();
    ASSERT_EQ(sent.size(), 5u);
    uint64_t on_tap = 0;
    for (const auto& p : sent) on_tap += p.frame.size();
    EXPECT_EQ(on_tap, 100u + 1014u + 60u + 118u + 4054u);
    const E1000Stats s = dev->stats();
    EXPECT_EQ(s.tx_packets, 5u);
    EXPECT_EQ(s.tx_bytes, on_tap);
    EXPECT_EQ(s.tx_dropped, 1u);
    const DeviceCounters c = dev->counters();
    EXPECT_EQ(counter(c, "tx_packets"), 5u);
    EXPECT_EQ(counter(c, "tx_bytes"), 5346u);
}

}  // namespace
}  // namespace rv::test
