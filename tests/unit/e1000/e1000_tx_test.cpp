// Transmit: legacy and extended descriptors, checksum offload, TSO, ring
// wrap-around, VLAN insertion and hostile rings.
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

TEST_F(E1000Test, TxChecksumOffloadWithContextDescriptor) {
    setup_tx(16);
    auto frame = tcp_frame(700, 1000, 0x18, false);
    ASSERT_FALSE(tcp_checksum_ok(frame));
    TxContext ctx{.ipcss = kIpOff,
                  .ipcso = kIpOff + 10,
                  .ipcse = kTcpOff - 1,
                  .tucss = kTcpOff,
                  .tucso = kTcpOff + 16,
                  .tucse = 0,
                  .tucmd = kTuCmdTcp | kTuCmdIp};
    put_tx(context_desc(ctx));
    std::span<const uint8_t> f(frame);
    put_tx(data_desc(tx_data(f.first(54)), 54, kTxCmdIfcs, kTxPoptsIxsm | kTxPoptsTxsm));
    put_tx(data_desc(tx_data(f.subspan(54)), 700, kEopRs, 0));
    kick_tx();
    auto sent = sent_frames();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_TRUE(ipv4_checksum_ok(sent[0])) << get16(sent[0], kIpOff + 10);
    EXPECT_TRUE(tcp_checksum_ok(sent[0]));
    // Only the checksum fields changed.
    auto expect = frame;
    expect[kIpOff + 10] = sent[0][kIpOff + 10];
    expect[kIpOff + 11] = sent[0][kIpOff + 11];
    expect[kTcpOff + 16] = sent[0][kTcpOff + 16];
    expect[kTcpOff + 17] = sent[0][kTcpOff + 17];
    EXPECT_EQ(sent[0], expect);
}

TEST_F(E1000Test, TxTsoSplitsIntoMssSegments) {
    setup_tx(16);
    const uint32_t seq = 0xFFFFF000;                 // wraps within the packet
    auto packet = tcp_frame(4000, seq, 0x19, true);  // PSH | FIN | ACK... flags 0x19 = FIN|PSH|ACK
    TxContext ctx{.ipcss = kIpOff,
                  .ipcso = kIpOff + 10,
                  .ipcse = kTcpOff - 1,
                  .tucss = kTcpOff,
                  .tucso = kTcpOff + 16,
                  .tucse = 0,
                  .paylen = 4000,
                  .tucmd = kTuCmdTcp | kTuCmdIp | kTxCmdTse,
                  .hdr_len = kTcpHdrEnd,
                  .mss = 1448};
    put_tx(context_desc(ctx));
    std::span<const uint8_t> p(packet);
    const uint8_t popts = kTxPoptsIxsm | kTxPoptsTxsm;
    put_tx(data_desc(tx_data(p.first(54)), 54, kTxCmdIfcs | kTxCmdTse, popts));
    put_tx(data_desc(tx_data(p.subspan(54, 3000)), 3000, kTxCmdIfcs | kTxCmdTse, popts));
    put_tx(data_desc(tx_data(p.subspan(3054)), 1000, kEopRs | kTxCmdTse, popts));
    kick_tx();
    auto sent = sent_frames();
    ASSERT_EQ(sent.size(), 3u);
    const size_t payloads[3] = {1448, 1448, 1104};
    size_t at = 0;
    for (size_t i = 0; i < 3; ++i) {
        const auto& s = sent[i];
        SCOPED_TRACE(i);
        ASSERT_EQ(s.size(), 54 + payloads[i]);
        EXPECT_EQ(get16(s, kIpOff + 2), 40 + payloads[i]);     // IP total length
        EXPECT_EQ(get16(s, kIpOff + 4), 0x1234 + i);           // IP id
        EXPECT_EQ(get32(s, kTcpOff + 4), seq + uint32_t(at));  // sequence number
        EXPECT_TRUE(ipv4_checksum_ok(s));
        EXPECT_TRUE(tcp_checksum_ok(s));
        uint8_t flags = s[kTcpOff + 13];
        EXPECT_EQ(flags & 0x10, 0x10);           // ACK everywhere
        EXPECT_EQ((flags & 0x09) != 0, i == 2);  // PSH/FIN only on the last
        EXPECT_TRUE(std::equal(s.begin() + 54, s.end(), packet.begin() + 54 + at));
        at += payloads[i];
    }
    EXPECT_EQ(read32(stat::kGptc), 3u);
}

TEST_F(E1000Test, TxTsoIpv6) {
    setup_tx(16);
    // Ethernet + IPv6 (40) + TCP (20) + 3000 bytes.
    std::vector<uint8_t> packet = eth_frame(kPeerMac, 60 + 3000, 0x86DD);
    packet[14] = 0x60;
    packet[14 + 6] = 6;  // next header TCP
    packet[14 + 7] = 64;
    for (int i = 0; i < 32; ++i) packet[14 + 8 + i] = static_cast<uint8_t>(i + 1);
    const size_t tcp = 54;
    for (int i = 0; i < 20; ++i) packet[tcp + i] = 0;
    packet[tcp + 12] = 5 << 4;
    packet[tcp + 13] = 0x18;
    TxContext ctx{.ipcss = 14,
                  .tucss = static_cast<uint8_t>(tcp),
                  .tucso = static_cast<uint8_t>(tcp + 16),
                  .paylen = 3000,
                  .tucmd = kTuCmdTcp | kTxCmdTse,
                  .hdr_len = 74,
                  .mss = 1220};
    put_tx(context_desc(ctx));
    put_tx(data_desc(tx_data(packet), static_cast<uint32_t>(packet.size()), kEopRs | kTxCmdTse,
                     kTxPoptsTxsm));
    kick_tx();
    auto sent = sent_frames();
    ASSERT_EQ(sent.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
        const auto& s = sent[i];
        size_t payload = s.size() - 74;
        EXPECT_EQ(payload, i < 2 ? 1220u : 560u);
        EXPECT_EQ(get16(s, 14 + 4), 20 + payload);  // IPv6 payload length
        uint32_t sum = ref_sum(s, 14 + 8, 14 + 40) + 6 + uint32_t(s.size() - tcp);
        EXPECT_EQ(ref_fold(ref_sum(s, tcp, s.size(), sum)), 0xFFFF);
    }
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
