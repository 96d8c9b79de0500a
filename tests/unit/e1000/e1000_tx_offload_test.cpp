// Transmit offloads passed through to the host: checksum offload becomes a
// NEEDS_CSUM virtio-net header, TSO one GSO frame with its headers fixed the
// way the host's segmentation expects (checked by segmenting it here), and
// malformed TSO contexts are dropped.
#include "unit/e1000/e1000_fixture.h"

namespace rv::test {
namespace {

using namespace e1000;

constexpr uint8_t kEopRs = kTxCmdEop | kTxCmdIfcs | kTxCmdRs;

// What the host does with a NEEDS_CSUM frame: sum from csum_start to the
// end, seeded by what the field holds, and store the complement there.
std::vector<uint8_t> host_finish_csum(std::vector<uint8_t> f, size_t start, size_t field) {
    uint16_t sum = static_cast<uint16_t>(~ref_fold(ref_sum(f, start, f.size())));
    put16(f, field, sum);
    return f;
}

// What the host's GSO code does with an IPv4 TCPV4 super-frame (modelled
// on tcp_gso_segment / inet_gso_segment): cut the payload into gso_size
// pieces behind copies of the headers, fix IP length, id and checksum and
// the TCP sequence number, move the partial checksum from the full TCP
// length to the segment's and finish it. Only valid if the device left the
// pseudo-header sum *with* the full length in the field.
std::vector<std::vector<uint8_t>> host_segment_v4(const std::vector<uint8_t>& f, size_t hdr_len,
                                                  size_t mss) {
    std::vector<std::vector<uint8_t>> out;
    const uint32_t full_tcp_len = static_cast<uint32_t>(f.size() - kTcpOff);
    const uint32_t seq = get32(f, kTcpOff + 4);
    for (size_t at = hdr_len; at < f.size(); at += mss) {
        size_t len = std::min(mss, f.size() - at);
        std::vector<uint8_t> s(f.begin(), f.begin() + hdr_len);
        s.insert(s.end(), f.begin() + at, f.begin() + at + len);
        put16(s, kIpOff + 2, static_cast<uint16_t>(s.size() - kIpOff));
        put16(s, kIpOff + 4, static_cast<uint16_t>(get16(f, kIpOff + 4) + out.size()));
        put16(s, kIpOff + 10, 0);
        put16(s, kIpOff + 10, static_cast<uint16_t>(~ref_fold(ref_sum(s, kIpOff, kIpOff + 20))));
        uint32_t s_seq = seq + uint32_t(at - hdr_len);
        put16(s, kTcpOff + 4, static_cast<uint16_t>(s_seq >> 16));
        put16(s, kTcpOff + 6, static_cast<uint16_t>(s_seq));
        if (at + len < f.size()) s[kTcpOff + 13] &= static_cast<uint8_t>(~0x09);  // FIN, PSH
        uint32_t partial = get16(f, kTcpOff + 16) + (~full_tcp_len & 0xFFFF) +
                           static_cast<uint32_t>(s.size() - kTcpOff);
        put16(s, kTcpOff + 16, ref_fold(partial));
        out.push_back(host_finish_csum(std::move(s), kTcpOff, kTcpOff + 16));
    }
    return out;
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
    auto sent = sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    const auto& h = sent[0].hdr;
    EXPECT_EQ(h.flags, 1);  // NEEDS_CSUM
    EXPECT_EQ(h.gso_type, 0);
    EXPECT_EQ(h.csum_start, kTcpOff);
    EXPECT_EQ(h.csum_offset, 16);
    EXPECT_EQ(h.gso_size | h.hdr_len | h.num_buffers, 0);
    const auto& s = sent[0].frame;
    EXPECT_TRUE(ipv4_checksum_ok(s)) << get16(s, kIpOff + 10);  // IXSM stays in software
    // Only the IP checksum changed; the TCP field keeps the driver's sum...
    auto expect = frame;
    expect[kIpOff + 10] = s[kIpOff + 10];
    expect[kIpOff + 11] = s[kIpOff + 11];
    EXPECT_EQ(s, expect);
    // ...which the host completes into a valid checksum.
    EXPECT_TRUE(tcp_checksum_ok(host_finish_csum(s, h.csum_start, h.csum_start + h.csum_offset)));
}

TEST_F(E1000Test, TxTsoIsOneGsoFrame) {
    setup_tx(16);
    const uint32_t seq = 0xFFFFF000;                 // wraps within the packet
    auto packet = tcp_frame(4000, seq, 0x19, true);  // FIN | PSH | ACK
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
    auto sent = sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    const auto& h = sent[0].hdr;
    EXPECT_EQ(h.flags, 1);     // NEEDS_CSUM
    EXPECT_EQ(h.gso_type, 1);  // TCPV4
    EXPECT_EQ(h.hdr_len, kTcpHdrEnd);
    EXPECT_EQ(h.gso_size, 1448);
    EXPECT_EQ(h.csum_start, kTcpOff);
    EXPECT_EQ(h.csum_offset, 16);
    EXPECT_EQ(h.num_buffers, 0);
    const auto& s = sent[0].frame;
    ASSERT_EQ(s.size(), packet.size());
    EXPECT_EQ(get16(s, kIpOff + 2), 40 + 4000);  // the whole IP packet
    EXPECT_TRUE(ipv4_checksum_ok(s));
    // TCP field: the folded, not inverted, pseudo-header sum with the length.
    uint32_t pseudo = ref_sum(s, kIpOff + 12, kIpOff + 20) + 6 + 20 + 4000;
    EXPECT_EQ(get16(s, kTcpOff + 16), ref_fold(pseudo));
    // Everything else as the driver wrote it.
    auto expect = packet;
    for (size_t i : {kIpOff + 2, kIpOff + 10, kTcpOff + 16}) {
        expect[i] = s[i];
        expect[i + 1] = s[i + 1];
    }
    EXPECT_EQ(s, expect);
    // The host can segment it into valid frames.
    auto segs = host_segment_v4(s, h.hdr_len, h.gso_size);
    ASSERT_EQ(segs.size(), 3u);
    const size_t payloads[3] = {1448, 1448, 1104};
    for (size_t i = 0; i < 3; ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(segs[i].size(), 54 + payloads[i]);
        EXPECT_TRUE(ipv4_checksum_ok(segs[i]));
        EXPECT_TRUE(tcp_checksum_ok(segs[i]));
    }
    // Statistics count what the wire would have carried: three segments.
    EXPECT_EQ(read32(stat::kGptc), 3u);
    EXPECT_EQ(read32(stat::kGotcl), packet.size() + 2 * 54 + 3 * 4);
}

TEST_F(E1000Test, TxTsoSingleSegmentAndVlan) {
    setup_tx(16);
    write32(reg::kCtrl, read32(reg::kCtrl) | kCtrlVme);
    TxContext ctx{.ipcss = kIpOff,
                  .ipcso = kIpOff + 10,
                  .tucss = kTcpOff,
                  .tucso = kTcpOff + 16,
                  .tucmd = kTuCmdTcp | kTuCmdIp | kTxCmdTse,
                  .hdr_len = kTcpHdrEnd,
                  .mss = 1000};
    put_tx(context_desc(ctx));
    // 1000 bytes of payload fit one segment: plain checksum offload.
    auto small = tcp_frame(1000, 7, 0x18, true);
    put_tx(data_desc(tx_data(small), static_cast<uint32_t>(small.size()), kEopRs | kTxCmdTse,
                     kTxPoptsTxsm));
    // 1001 bytes with a VLAN tag: GSO, offsets moved by the tag.
    auto big = tcp_frame(1001, 7, 0x18, true);
    auto d = data_desc(tx_data(big), static_cast<uint32_t>(big.size()),
                       kEopRs | kTxCmdTse | kTxCmdVle, kTxPoptsTxsm);
    d[14] = 9;  // VLAN 9
    put_tx(d);
    kick_tx();
    auto sent = sent_packets();
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(sent[0].hdr.flags, 1);
    EXPECT_EQ(sent[0].hdr.gso_type, 0);
    EXPECT_EQ(sent[0].hdr.csum_start, kTcpOff);
    EXPECT_TRUE(ipv4_checksum_ok(sent[0].frame));
    EXPECT_TRUE(tcp_checksum_ok(host_finish_csum(sent[0].frame, kTcpOff, kTcpOff + 16)));
    EXPECT_EQ(sent[1].hdr.gso_type, 1);
    EXPECT_EQ(sent[1].hdr.gso_size, 1000);
    EXPECT_EQ(sent[1].hdr.csum_start, kTcpOff + 4);
    EXPECT_EQ(sent[1].hdr.csum_offset, 16);
    EXPECT_EQ(sent[1].hdr.hdr_len, kTcpHdrEnd + 4);
    EXPECT_EQ(get16(sent[1].frame, 12), 0x8100);
    EXPECT_EQ(get16(sent[1].frame, 14), 9);
}

TEST_F(E1000Test, TxTsoIpv6) {
    setup_tx(16);
    // Ethernet + IPv6 (40) + TCP (20) + 3000 bytes, payload_len 0 and the
    // TCP field holding the pseudo sum without the length, as Linux does.
    std::vector<uint8_t> packet = eth_frame(kPeerMac, 60 + 3000, 0x86DD);
    packet[14] = 0x60;
    put16(packet, 14 + 4, 0);
    packet[14 + 6] = 6;  // next header TCP
    packet[14 + 7] = 64;
    for (int i = 0; i < 32; ++i) packet[14 + 8 + i] = static_cast<uint8_t>(i * 37 + 1);
    const size_t tcp = 54;
    for (int i = 0; i < 20; ++i) packet[tcp + i] = 0;
    packet[tcp + 12] = 5 << 4;
    packet[tcp + 13] = 0x18;
    put16(packet, tcp + 16, ref_fold(ref_sum(packet, 14 + 8, 14 + 40) + 6));
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
    auto sent = sent_packets();
    ASSERT_EQ(sent.size(), 1u);
    const auto& h = sent[0].hdr;
    EXPECT_EQ(h.flags, 1);
    EXPECT_EQ(h.gso_type, 4);  // TCPV6
    EXPECT_EQ(h.hdr_len, 74);
    EXPECT_EQ(h.gso_size, 1220);
    EXPECT_EQ(h.csum_start, tcp);
    EXPECT_EQ(h.csum_offset, 16);
    const auto& s = sent[0].frame;
    ASSERT_EQ(s.size(), packet.size());
    EXPECT_EQ(get16(s, 14 + 4), 20 + 3000);  // IPv6 payload length
    uint32_t pseudo = ref_sum(s, 14 + 8, 14 + 40) + 6 + 20 + 3000;
    EXPECT_EQ(get16(s, tcp + 16), ref_fold(pseudo));
    // Finished unsegmented (local delivery), it is a valid TCP checksum.
    auto done = host_finish_csum(s, tcp, tcp + 16);
    uint32_t check = ref_sum(done, 14 + 8, 14 + 40) + 6 + uint32_t(done.size() - tcp);
    EXPECT_EQ(ref_fold(ref_sum(done, tcp, done.size(), check)), 0xFFFF);
}

TEST_F(E1000Test, TxMalformedTsoContextsAreDropped) {
    setup_tx(32);
    auto packet = tcp_frame(3000, 1, 0x10, true);
    const TxContext good{.ipcss = kIpOff,
                         .ipcso = kIpOff + 10,
                         .tucss = kTcpOff,
                         .tucso = kTcpOff + 16,
                         .tucmd = kTuCmdTcp | kTuCmdIp | kTxCmdTse,
                         .hdr_len = kTcpHdrEnd,
                         .mss = 1448};
    uint64_t addr = tx_data(packet);
    auto send = [&](TxContext ctx, uint32_t len) {
        put_tx(context_desc(ctx));
        put_tx(data_desc(addr, len, kEopRs | kTxCmdTse, kTxPoptsIxsm | kTxPoptsTxsm));
    };
    const uint32_t len = static_cast<uint32_t>(packet.size());
    auto c = good;
    c.tucmd = kTuCmdIp | kTxCmdTse;  // UDP
    send(c, len);
    c = good;
    c.tucso = kTcpOff + 6;  // not the TCP checksum field
    send(c, len);
    c = good;
    c.tucmd = kTuCmdTcp | kTxCmdTse;  // says IPv6, header is IPv4
    send(c, len);
    c = good;
    c.tucss = kIpOff + 10;  // TCP header inside the IP header
    c.tucso = kIpOff + 26;
    send(c, len);
    c = good;
    c.hdr_len = kTcpOff + 10;  // shorter than the TCP header
    send(c, len);
    c = good;
    send(c, kTcpHdrEnd);  // no payload
    c = good;
    c.tucss = 240;  // TCP header past the frame
    c.tucso = 0;    // 256 wraps in the u8 field
    c.hdr_len = 255;
    send(c, 200);
    c = good;
    c.ipcss = 250;  // IP header past the header length
    send(c, len);
    testing::internal::CaptureStderr();
    kick_tx();
    std::string log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("dropping"), std::string::npos) << log;
    EXPECT_TRUE(sent_packets().empty());
    EXPECT_EQ(dev->stats().tx_dropped, 8u);
    // The good context still works afterwards.
    send(good, len);
    kick_tx();
    EXPECT_EQ(sent_packets().size(), 1u);
}

}  // namespace
}  // namespace rv::test
