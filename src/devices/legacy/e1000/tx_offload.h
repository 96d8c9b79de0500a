// Transmit offloads of the 82540, mostly passed through to the host: a TSO
// packet goes to the backend as one frame with a GSO virtio-net header, a
// TCP/UDP checksum request as a NEEDS_CSUM header, so the host kernel does
// the work (for locally delivered packets, none at all). What virtio has no
// offload for stays in software: the IPv4 header checksum (POPTS.IXSM) and
// legacy-descriptor CSO insertion. Pure functions over byte buffers the
// device already copied out of guest memory; every offset comes from the
// guest and is checked against the frame before anything is touched.
#pragma once

#include <cstdint>
#include <span>

#include "backends/net/vnet_hdr.h"
#include "base/error.h"
#include "devices/legacy/e1000/e1000_regs.h"

namespace rv::e1000 {

// The offload parameters of a transmit context descriptor (SDM 3.3.6).
struct TxContext {
    uint8_t ipcss{0};   // IP header start
    uint8_t ipcso{0};   // IP checksum field
    uint16_t ipcse{0};  // last byte of the IP checksum range (0: end of frame)
    uint8_t tucss{0};   // TCP/UDP header start
    uint8_t tucso{0};   // TCP/UDP checksum field
    uint16_t tucse{0};  // last byte of the TCP/UDP checksum range (0: end)
    uint32_t paylen{0};
    uint8_t tucmd{0};  // kTuCmdTcp, kTuCmdIp, kTxCmdTse ...
    uint8_t hdr_len{0};
    uint16_t mss{0};

    bool operator==(const TxContext&) const = default;
};

TxContext parse_context(const RawDesc& desc);

// What a transmit offload asks of the host: the virtio-net header for the
// tap, and the segments the host will cut the frame into (for the
// statistics, which count what the hardware would have put on the wire).
struct TxOffload {
    VnetHdr hdr;
    uint32_t segments{1};
};

// Ones'-complement sum of big-endian 16-bit words (odd tail padded with 0).
uint32_t checksum_add(uint32_t sum, std::span<const uint8_t> bytes);
uint16_t checksum_fold(uint32_t sum);

// Stores ~sum(frame[start..end]) big-endian at frame[offset]; end is
// inclusive, 0 meaning the last byte. The field's current contents are part
// of the sum (the driver leaves the pseudo-header sum there). With
// udp_zero_is_ffff a zero result is sent as 0xFFFF (RFC 768). False, and
// the frame untouched, when the offsets do not fit the frame.
bool insert_checksum(std::span<uint8_t> frame, uint32_t start, uint32_t offset, uint32_t end,
                     bool udp_zero_is_ffff = false);

// Turns a TSO packet (headers + payload, as the Linux driver prepares it
// for hardware: IP length 0, TCP checksum = pseudo-header sum without the
// length) into one CHECKSUM_PARTIAL super-frame: IPv4 total length and
// header checksum (or IPv6 payload length) fixed, the TCP checksum field
// seeded with the folded pseudo-header sum including the TCP length, and
// the GSO header describing it. An error, and the frame possibly half
// edited (it is dropped), when the context does not describe this packet.
Result<TxOffload> prepare_tso(std::span<uint8_t> frame, const TxContext& ctx);

// Plain checksum offload of an extended data descriptor: IXSM is done here,
// TXSM becomes a NEEDS_CSUM header (the field already holds the pseudo-
// header sum) unless TUCSE stops short of the frame end, which virtio
// cannot express, in which case it is done here too.
Result<TxOffload> prepare_checksums(std::span<uint8_t> frame, const TxContext& ctx, uint8_t popts);

}  // namespace rv::e1000
