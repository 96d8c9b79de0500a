#include "devices/legacy/e1000/tx_offload.h"

#include <algorithm>
#include <cstring>

namespace rv::e1000 {

namespace {

constexpr uint32_t kIpv4HeaderMin = 20;
constexpr uint32_t kIpv6Header = 40;
constexpr uint32_t kTcpHeaderMin = 20;
constexpr uint32_t kUdpHeader = 8;
constexpr uint8_t kTcpFlagFin = 0x01;
constexpr uint8_t kTcpFlagPsh = 0x08;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;

uint16_t get_be16(std::span<const uint8_t> b, size_t at) {
    return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}
void put_be16(std::span<uint8_t> b, size_t at, uint16_t v) {
    b[at] = static_cast<uint8_t>(v >> 8);
    b[at + 1] = static_cast<uint8_t>(v);
}
uint32_t get_be32(std::span<const uint8_t> b, size_t at) {
    return (uint32_t{get_be16(b, at)} << 16) | get_be16(b, at + 2);
}
void put_be32(std::span<uint8_t> b, size_t at, uint32_t v) {
    put_be16(b, at, static_cast<uint16_t>(v >> 16));
    put_be16(b, at + 2, static_cast<uint16_t>(v));
}

}  // namespace

TxContext parse_context(const RawDesc& desc) {
    const uint8_t* b = desc.bytes;
    uint32_t cmd_len = le32(b + 8);
    return TxContext{.ipcss = b[0],
                     .ipcso = b[1],
                     .ipcse = le16(b + 2),
                     .tucss = b[4],
                     .tucso = b[5],
                     .tucse = le16(b + 6),
                     .paylen = cmd_len & 0xFFFFF,
                     .tucmd = static_cast<uint8_t>(cmd_len >> 24),
                     .hdr_len = b[13],
                     .mss = le16(b + 14)};
}

uint32_t checksum_add(uint32_t sum, std::span<const uint8_t> bytes) {
    // Fold as we go so any length up to 64 KiB+ cannot overflow 32 bits.
    size_t i = 0;
    for (; i + 1 < bytes.size(); i += 2) {
        sum += static_cast<uint32_t>((bytes[i] << 8) | bytes[i + 1]);
        if (sum & 0x80000000u) sum = (sum & 0xFFFF) + (sum >> 16);
    }
    if (i < bytes.size()) sum += static_cast<uint32_t>(bytes[i] << 8);
    return sum;
}

uint16_t checksum_fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

bool insert_checksum(std::span<uint8_t> frame, uint32_t start, uint32_t offset, uint32_t end,
                     bool udp_zero_is_ffff) {
    size_t size = frame.size();
    if (size == 0) return false;
    uint64_t last = end == 0 ? size - 1 : end;
    if (start > last || last >= size || uint64_t{offset} + 2 > size) return false;
    uint16_t sum = static_cast<uint16_t>(
        ~checksum_fold(checksum_add(0, frame.subspan(start, last - start + 1))));
    if (udp_zero_is_ffff && sum == 0) sum = 0xFFFF;
    put_be16(frame, offset, sum);
    return true;
}

bool tso_segment(std::span<const uint8_t> packet, const TxContext& ctx, uint8_t popts,
                 std::vector<uint8_t>& scratch,
                 const std::function<void(std::span<const uint8_t>)>& emit) {
    const bool ipv4 = ctx.tucmd & kTuCmdIp;
    const bool tcp = ctx.tucmd & kTuCmdTcp;
    const uint32_t hdr = ctx.hdr_len;
    const uint32_t mss = ctx.mss;
    // Everything the loop below touches must lie inside the copied header.
    if (hdr == 0 || hdr > packet.size() || mss == 0) return false;
    if (uint32_t{ctx.ipcss} + (ipv4 ? kIpv4HeaderMin : kIpv6Header) > hdr) return false;
    if (uint32_t{ctx.tucss} + (tcp ? kTcpHeaderMin : kUdpHeader) > hdr) return false;
    if ((popts & kTxPoptsTxsm) && uint32_t{ctx.tucso} + 2 > hdr) return false;
    if ((popts & kTxPoptsIxsm) && ipv4 && uint32_t{ctx.ipcso} + 2 > hdr) return false;
    if (ctx.tucss < ctx.ipcss) return false;
    const uint32_t payload = static_cast<uint32_t>(packet.size()) - hdr;
    const uint32_t segments = payload == 0 ? 1 : (payload + mss - 1) / mss;
    if (segments > kMaxTsoSegments) return false;

    std::span<const uint8_t> header = packet.first(hdr);
    const uint16_t ip_id = ipv4 ? get_be16(header, ctx.ipcss + 4) : 0;
    const uint32_t seq = tcp ? get_be32(header, ctx.tucss + 4) : 0;
    for (uint32_t i = 0; i < segments; ++i) {
        uint32_t at = i * mss;
        uint32_t len = std::min(mss, payload - at);
        bool last = i + 1 == segments;
        scratch.resize(hdr + len);
        std::span<uint8_t> seg(scratch);
        std::copy(header.begin(), header.end(), seg.begin());
        std::copy_n(packet.begin() + hdr + at, len, seg.begin() + hdr);
        const uint32_t seg_len = hdr + len;
        const uint32_t l4_len = seg_len - ctx.tucss;
        if (ipv4) {
            put_be16(seg, ctx.ipcss + 2, static_cast<uint16_t>(seg_len - ctx.ipcss));
            put_be16(seg, ctx.ipcss + 4, static_cast<uint16_t>(ip_id + i));
        } else {
            put_be16(seg, ctx.ipcss + 4, static_cast<uint16_t>(seg_len - ctx.ipcss - kIpv6Header));
        }
        if (tcp) {
            put_be32(seg, ctx.tucss + 4, seq + at);
            if (!last) seg[ctx.tucss + 13] &= static_cast<uint8_t>(~(kTcpFlagFin | kTcpFlagPsh));
        } else {
            put_be16(seg, ctx.tucss + 4, static_cast<uint16_t>(l4_len));
        }
        if ((popts & kTxPoptsIxsm) && ipv4) {
            put_be16(seg, ctx.ipcso, 0);
            uint32_t ip_end = ctx.ipcse != 0 ? ctx.ipcse : ctx.tucss - 1u;
            if (!insert_checksum(seg, ctx.ipcss, ctx.ipcso, ip_end)) return false;
        }
        if (popts & kTxPoptsTxsm) {
            // The driver left a pseudo-header sum without the length there;
            // start again from the full pseudo-header of this segment.
            put_be16(seg, ctx.tucso, 0);
            uint32_t sum = 0;
            if (ipv4)
                sum = checksum_add(sum, seg.subspan(ctx.ipcss + 12, 8));
            else
                sum = checksum_add(sum, seg.subspan(ctx.ipcss + 8, 32));
            sum += tcp ? kProtoTcp : kProtoUdp;
            sum += l4_len >> 16;
            sum += l4_len & 0xFFFF;
            sum = checksum_add(sum, seg.subspan(ctx.tucss));
            uint16_t folded = static_cast<uint16_t>(~checksum_fold(sum));
            if (!tcp && folded == 0) folded = 0xFFFF;
            put_be16(seg, ctx.tucso, folded);
        }
        emit(seg);
    }
    return true;
}

}  // namespace rv::e1000
