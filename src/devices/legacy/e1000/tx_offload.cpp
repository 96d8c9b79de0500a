#include "devices/legacy/e1000/tx_offload.h"

namespace rv::e1000 {

namespace {

constexpr uint32_t kIpv4HeaderMin = 20;
constexpr uint32_t kIpv6Header = 40;
constexpr uint32_t kTcpHeaderMin = 20;
// The tap refuses GSO TCP frames whose checksum is not struct tcphdr.check.
constexpr uint32_t kTcpCheckOffset = 16;
constexpr uint32_t kProtoTcp = 6;

void put_be16(std::span<uint8_t> b, size_t at, uint16_t v) {
    b[at] = static_cast<uint8_t>(v >> 8);
    b[at + 1] = static_cast<uint8_t>(v);
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

Result<TxOffload> prepare_tso(std::span<uint8_t> frame, const TxContext& ctx) {
    const bool ipv4 = ctx.tucmd & kTuCmdIp;
    const size_t len = frame.size();
    const uint32_t ip = ctx.ipcss;
    const uint32_t tcp = ctx.tucss;
    const uint32_t hdr = ctx.hdr_len;
    // Everything written below lies inside the first hdr bytes, and hdr
    // inside the frame with at least one payload byte after it.
    if (!(ctx.tucmd & kTuCmdTcp)) return make_error("UDP segmentation is not supported");
    if (ctx.mss == 0) return make_error("TSO with MSS 0");
    if (hdr >= len) return make_error("TSO header length {} for a {}-byte frame", hdr, len);
    if (tcp + kTcpHeaderMin > hdr) return make_error("TSO TCP header past the header length");
    if (uint32_t{ctx.tucso} != tcp + kTcpCheckOffset)
        return make_error("TSO checksum field is not the TCP checksum");
    if (ip + (ipv4 ? kIpv4HeaderMin : kIpv6Header) > tcp)
        return make_error("TSO IP header overlaps the TCP header");
    if ((frame[ip] >> 4) != (ipv4 ? 4 : 6))
        return make_error("TSO context says IPv{} but the header is not", ipv4 ? 4 : 6);

    const size_t ip_len = len - ip;
    uint32_t sum = 0;
    if (ipv4) {
        const uint32_t ihl = (frame[ip] & 0xFu) * 4;
        if (ihl < kIpv4HeaderMin || ip + ihl > tcp) return make_error("TSO bad IPv4 IHL");
        if (ip_len > 0xFFFF) return make_error("TSO IPv4 packet of {} bytes", ip_len);
        put_be16(frame, ip + 2, static_cast<uint16_t>(ip_len));
        put_be16(frame, ip + 10, 0);
        put_be16(frame, ip + 10,
                 static_cast<uint16_t>(~checksum_fold(checksum_add(0, frame.subspan(ip, ihl)))));
        sum = checksum_add(sum, frame.subspan(ip + 12, 8));
    } else {
        if (ip_len - kIpv6Header > 0xFFFF) return make_error("TSO IPv6 packet of {} bytes", ip_len);
        put_be16(frame, ip + 4, static_cast<uint16_t>(ip_len - kIpv6Header));
        sum = checksum_add(sum, frame.subspan(ip + 8, 32));
    }
    // Linux's CHECKSUM_PARTIAL convention: the folded, not inverted,
    // pseudo-header sum with the full TCP length; the host's GSO code
    // adjusts it per segment.
    const uint32_t tcp_len = static_cast<uint32_t>(len - tcp);
    sum += kProtoTcp + (tcp_len >> 16) + (tcp_len & 0xFFFF);
    put_be16(frame, ctx.tucso, checksum_fold(sum));

    TxOffload out{.hdr = {.flags = kVnetFlagNeedsCsum,
                          .hdr_len = static_cast<uint16_t>(hdr),
                          .csum_start = static_cast<uint16_t>(tcp),
                          .csum_offset = static_cast<uint16_t>(kTcpCheckOffset)}};
    // A packet that fits one segment is sent as a plain checksum offload:
    // the host would not segment it anyway (and gso_size 0xFFFF, which an
    // MSS field can hold, means something else to the kernel).
    const size_t payload = len - hdr;
    if (payload > ctx.mss) {
        out.hdr.gso_type = ipv4 ? kVnetGsoTcpv4 : kVnetGsoTcpv6;
        out.hdr.gso_size = ctx.mss;
        out.segments = static_cast<uint32_t>((payload + ctx.mss - 1) / ctx.mss);
    }
    return out;
}

Result<TxOffload> prepare_checksums(std::span<uint8_t> frame, const TxContext& ctx, uint8_t popts) {
    TxOffload out;
    const size_t len = frame.size();
    // virtio has no IP header checksum offload; 20 bytes are cheap.
    if ((popts & kTxPoptsIxsm) && !insert_checksum(frame, ctx.ipcss, ctx.ipcso, ctx.ipcse))
        return make_error("IP checksum offsets outside the frame");
    if (!(popts & kTxPoptsTxsm)) return out;
    if (ctx.tucse != 0 && ctx.tucse + 1u != len) {
        // A range that stops before the frame end cannot be expressed as
        // NEEDS_CSUM (which sums to the end): do it here.
        if (!insert_checksum(frame, ctx.tucss, ctx.tucso, ctx.tucse, !(ctx.tucmd & kTuCmdTcp)))
            return make_error("TCP/UDP checksum offsets outside the frame");
        return out;
    }
    if (ctx.tucss >= len || ctx.tucso < ctx.tucss || ctx.tucso + 2u > len)
        return make_error("TCP/UDP checksum offsets outside the frame");
    // The driver already left the pseudo-header sum (with the length) in
    // the field: exactly what NEEDS_CSUM wants.
    out.hdr.flags = kVnetFlagNeedsCsum;
    out.hdr.csum_start = ctx.tucss;
    out.hdr.csum_offset = static_cast<uint16_t>(ctx.tucso - ctx.tucss);
    return out;
}

}  // namespace rv::e1000
