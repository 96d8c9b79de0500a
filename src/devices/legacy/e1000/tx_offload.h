// Transmit offloads the 82540 performs in hardware and we do in software:
// inserting IP and TCP/UDP checksums where a context (or legacy) descriptor
// says, and TCP segmentation (TSO) of one large packet into MSS-sized
// frames. Pure functions over byte buffers the device already copied out
// of guest memory; every offset comes from the guest and is checked.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

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
};

TxContext parse_context(const RawDesc& desc);

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

// Largest number of segments one TSO packet may produce: a 64 KiB payload
// at Linux's smallest TCP MSS (88) needs 745.
inline constexpr uint32_t kMaxTsoSegments = 1024;

// Splits packet (headers + payload) into segments per ctx: each gets the
// first hdr_len bytes with IP length/ID, TCP sequence number and flags (or
// UDP length) fixed up, then checksums per popts (kTxPoptsIxsm/Txsm), with
// the TCP/UDP checksum recomputed from a full pseudo-header. emit sees each
// segment in turn. False (nothing emitted) when the context does not
// describe this packet.
bool tso_segment(std::span<const uint8_t> packet, const TxContext& ctx, uint8_t popts,
                 std::vector<uint8_t>& scratch,
                 const std::function<void(std::span<const uint8_t>)>& emit);

}  // namespace rv::e1000
