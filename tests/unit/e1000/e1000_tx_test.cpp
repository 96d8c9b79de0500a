// Transmit: legacy and extended descriptors, ring wrap-around, VLAN
// insertion and hostile rings (offloads: e1000_tx_offload_test.cpp).
#include "unit/e1000/e1000_fixture.h"

namespace rv::test {
namespace {

using namespace e1000;

constexpr uint8_t kEopRs = kTxCmdEop | kTxCmdIfcs | kTxCmdRs;

TEST_F(E1000Test, TxLegacySingleDescriptor) {
    setup_tx(8);
    write32(reg::kIms, kIntTxdw);
    auto frame = eth_frame(kPeerMac, 86);
    uint32_t i = put_tx(legacy_desc(tx_data(frame), static_cast<uint16_t>(frame.size()), kEopRs));
    EXPECT_FALSE(tx_status(i) & kTxStaDd);
    kick_tx();
    auto sent = sent_frames();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0], frame);
    EXPECT_TRUE(tx_status(i) & kTxStaDd);
    EXPECT_EQ(read32(reg::kTdh), 1u);
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(read32(reg::kIcr), kIntTxdw | kIntTxqe);
}

TEST_F(E1000Test, TxShortFrameIsPaddedAndNothingWithoutTctlEn) {
    setup_tx(8);
    write32(reg::kTctl, 0);
    auto frame = eth_frame(kPeerMac, 28);  // 42 bytes, an ARP-sized frame
    put_tx(legacy_desc(tx_data(frame), 42, kEopRs));
    kick_tx();
    EXPECT_TRUE(sent_frames().empty());
    EXPECT_EQ(read32(reg::kTdh), 0u);
    write32(reg::kTctl, kTctlEn | kTctlPsp);  // enabling starts the walk
    auto sent = sent_frames();
    ASSERT_EQ(sent.size(), 1u);
    ASSERT_EQ(sent[0].size(), 60u);
    EXPECT_TRUE(std::equal(frame.begin(), frame.end(), sent[0].begin()));
    EXPECT_TRUE(std::all_of(sent[0].begin() + 42, sent[0].end(), [](uint8_t b) { return b == 0; }));
}

TEST_F(E1000Test, TxMultiDescriptorFrame) {
    setup_tx(8);
    auto frame = eth_frame(kPeerMac, 1000);
    std::span<const uint8_t> f(frame);
    put_tx(legacy_desc(tx_data(f.first(14)), 14, kTxCmdIfcs));
    put_tx(legacy_desc(tx_data(f.subspan(14, 500)), 500, kTxCmdIfcs));
    uint32_t last = put_tx(legacy_desc(tx_data(f.subspan(514)), 500, kEopRs));
    kick_tx();
    auto sent = sent_frames();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0], frame);
    EXPECT_TRUE(tx_status(last) & kTxStaDd);
    EXPECT_FALSE(tx_status(0) & kTxStaDd);  // no RS there
}

TEST_F(E1000Test, TxPacketSplitAcrossTwoTailWrites) {
    setup_tx(8);
    auto frame = eth_frame(kPeerMac, 200);
    std::span<const uint8_t> f(frame);
    put_tx(legacy_desc(tx_data(f.first(100)), 100, kTxCmdIfcs));
    kick_tx();
    EXPECT_TRUE(sent_frames().empty());
    put_tx(legacy_desc(tx_data(f.subspan(100)), 114, kEopRs));
    kick_tx();
    auto sent = sent_frames();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0], frame);
}

TEST_F(E1000Test, TxLegacyInsertChecksum) {
    setup_tx(8);
    auto frame = tcp_frame(100, 1, 0x18, false);
    // CSS = TCP header start, CSO = its checksum field.
    put_tx(legacy_desc(tx_data(frame), static_cast<uint16_t>(frame.size()), kEopRs | kTxCmdIc,
                       kTcpOff + 16, kTcpOff));
    kick_tx();
    auto sent = sent_frames();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_TRUE(tcp_checksum_ok(sent[0]));
}

TEST_F(E1000Test, TxRingWrapsAround) {
    setup_tx(8, 6);  // start near the end
    std::vector<std::vector<uint8_t>> frames;
    for (int i = 0; i < 5; ++i) {
        frames.push_back(eth_frame(kPeerMac, 60 + i, 0x0800, static_cast<uint8_t>(i)));
        put_tx(legacy_desc(tx_data(frames.back()), static_cast<uint16_t>(frames.back().size()),
                           kEopRs));
    }
    kick_tx();
    EXPECT_EQ(sent_frames(), frames);
    EXPECT_EQ(read32(reg::kTdh), 3u);  // 6, 7, 0, 1, 2 done
    for (uint32_t i : {6u, 7u, 0u, 1u, 2u}) EXPECT_TRUE(tx_status(i) & kTxStaDd);
}

TEST_F(E1000Test, TxVlanInsertion) {
    setup_tx(8);
    write32(reg::kCtrl, read32(reg::kCtrl) | kCtrlVme);
    auto frame = eth_frame(kPeerMac, 100);
    auto d = legacy_desc(tx_data(frame), static_cast<uint16_t>(frame.size()), kEopRs | kTxCmdVle);
    d[14] = 0x05;  // special: VLAN 5, little endian
    put_tx(d);
    kick_tx();
    auto sent = sent_frames();
    ASSERT_EQ(sent.size(), 1u);
    ASSERT_EQ(sent[0].size(), frame.size() + 4);
    EXPECT_EQ(get16(sent[0], 12), 0x8100);
    EXPECT_EQ(get16(sent[0], 14), 5);
    EXPECT_EQ(get16(sent[0], 16), 0x0800);
}

// ---- hostile rings: nothing crashes, nothing is sent, a line is logged ----

TEST_F(E1000Test, TxHostileRingsAreIgnoredWithALogLine) {
    auto frame = eth_frame(kPeerMac, 100);
    auto desc = legacy_desc(tx_data(frame), 114, kEopRs);
    poke(kTxRing, desc);
    testing::internal::CaptureStderr();
    write32(reg::kTctl, kTctlEn);
    write32(reg::kTdbal, static_cast<uint32_t>(kTxRing));
    write32(reg::kTdlen, 0);  // empty ring
    write32(reg::kTdt, 1);
    write32(reg::kTdlen, 100);  // not a multiple of 128
    write32(reg::kTdt, 1);
    write32(reg::kTdlen, 128);
    write32(reg::kTdbal, static_cast<uint32_t>(kMemSize - 64));  // ring runs off RAM
    write32(reg::kTdt, 1);
    write32(reg::kTdbah, 0xFFFFFFFF);  // far outside
    write32(reg::kTdt, 1);
    std::string log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("bad ring"), std::string::npos) << log;
    EXPECT_TRUE(sent_frames().empty());

    write32(reg::kTdbah, 0);
    write32(reg::kTdbal, static_cast<uint32_t>(kTxRing));
    testing::internal::CaptureStderr();
    write32(reg::kTdt, 500);  // beyond the 8-entry ring
    log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("outside a ring"), std::string::npos) << log;
    EXPECT_EQ(read32(reg::kTdh), 0u);
    EXPECT_TRUE(sent_frames().empty());
    write32(reg::kTdt, 1);  // a sane tail still works afterwards
    EXPECT_EQ(sent_frames().size(), 1u);
}

TEST_F(E1000Test, TxBadBuffersAndContextsDropTheFrame) {
    setup_tx(16);
    testing::internal::CaptureStderr();
    // A buffer outside guest RAM.
    put_tx(legacy_desc(0xFFFFFFFF00ull, 100, kEopRs));
    // A context whose checksum offset lies past the frame.
    TxContext bad{.tucss = 10, .tucso = 250, .tucmd = kTuCmdTcp};
    put_tx(context_desc(bad));
    auto frame = eth_frame(kPeerMac, 50);
    put_tx(data_desc(tx_data(frame), 64, kEopRs, kTxPoptsTxsm));
    // TSO with a header longer than the packet.
    TxContext tso{.ipcss = 14,
                  .tucss = 34,
                  .tucso = 50,
                  .tucmd = kTuCmdTcp | kTuCmdIp | kTxCmdTse,
                  .hdr_len = 200,
                  .mss = 100};
    put_tx(context_desc(tso));
    put_tx(data_desc(tx_data(frame), 64, kEopRs | kTxCmdTse, kTxPoptsTxsm));
    // TSO with MSS 0.
    tso.hdr_len = 54;
    tso.mss = 0;
    put_tx(context_desc(tso));
    auto big = tcp_frame(500, 1, 0x10, true);
    put_tx(data_desc(tx_data(big), static_cast<uint32_t>(big.size()), kEopRs | kTxCmdTse,
                     kTxPoptsTxsm));
    kick_tx();
    std::string log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("dropping"), std::string::npos) << log;
    EXPECT_TRUE(sent_frames().empty());
    EXPECT_EQ(read32(reg::kTdh), tx_tail);  // every descriptor consumed
    EXPECT_EQ(dev->stats().tx_dropped, 4u);
}

TEST_F(E1000Test, TxOversizedPacketIsDropped) {
    setup_tx(64);
    // 40 descriptors of 2 KiB each pointing at the same buffer, no EOP
    // until the last: 80 KiB, more than any real packet.
    std::vector<uint8_t> chunk(2048, 0xAB);
    uint64_t addr = tx_data(chunk);
    for (int i = 0; i < 39; ++i) put_tx(legacy_desc(addr, 2048, kTxCmdIfcs));
    put_tx(legacy_desc(addr, 2048, kEopRs));
    // A normal frame right after still goes out.
    auto frame = eth_frame(kPeerMac, 100);
    put_tx(legacy_desc(tx_data(frame), 114, kEopRs));
    testing::internal::CaptureStderr();
    kick_tx();
    std::string log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("larger than 64 KiB"), std::string::npos) << log;
    auto sent = sent_frames();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0], frame);
}

TEST_F(E1000Test, TxFullRingIsOneLapAtMost) {
    setup_tx(8);
    auto frame = eth_frame(kPeerMac, 50);
    uint64_t addr = tx_data(frame);
    for (int i = 0; i < 8; ++i) poke(kTxRing + 16 * i, legacy_desc(addr, 64, kEopRs));
    // TDT = TDH - 1: seven descriptors, the most a driver can post.
    write32(reg::kTdh, 1);
    write32(reg::kTdt, 0);
    EXPECT_EQ(sent_frames().size(), 7u);
    EXPECT_EQ(read32(reg::kTdh), 0u);
}

}  // namespace
}  // namespace rv::test
