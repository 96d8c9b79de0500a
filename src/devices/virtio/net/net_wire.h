// virtio-net wire formats and feature bits (virtio 1.2, 5.1).
#pragma once

#include <cstdint>

namespace rv::virtio {

// Feature bits (5.1.3).
inline constexpr uint64_t kNetFCsum = 1ull << 0;       // device handles partial csum
inline constexpr uint64_t kNetFGuestCsum = 1ull << 1;  // driver handles partial csum
inline constexpr uint64_t kNetFMtu = 1ull << 3;
inline constexpr uint64_t kNetFMac = 1ull << 5;
inline constexpr uint64_t kNetFGuestTso4 = 1ull << 7;
inline constexpr uint64_t kNetFGuestTso6 = 1ull << 8;
inline constexpr uint64_t kNetFGuestEcn = 1ull << 9;
inline constexpr uint64_t kNetFGuestUfo = 1ull << 10;
inline constexpr uint64_t kNetFHostTso4 = 1ull << 11;
inline constexpr uint64_t kNetFHostTso6 = 1ull << 12;
inline constexpr uint64_t kNetFHostEcn = 1ull << 13;
inline constexpr uint64_t kNetFMrgRxbuf = 1ull << 15;
inline constexpr uint64_t kNetFStatus = 1ull << 16;
inline constexpr uint64_t kNetFCtrlVq = 1ull << 17;

inline constexpr uint16_t kNetSLinkUp = 1;

// virtio_net_hdr_v1 (5.1.6): in virtio 1.x the header always carries
// num_buffers, so it is 12 bytes on both queues, with or without MRG_RXBUF.
struct VirtioNetHdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};
static_assert(sizeof(VirtioNetHdr) == 12);
inline constexpr uint32_t kNetHdrSize = sizeof(VirtioNetHdr);
inline constexpr uint32_t kNetHdrNumBuffersOffset = 10;

inline constexpr uint8_t kNetHdrFNeedsCsum = 1;
inline constexpr uint8_t kNetHdrFDataValid = 2;
inline constexpr uint8_t kNetHdrGsoNone = 0;
inline constexpr uint8_t kNetHdrGsoTcpv4 = 1;
inline constexpr uint8_t kNetHdrGsoUdp = 3;
inline constexpr uint8_t kNetHdrGsoTcpv6 = 4;
inline constexpr uint8_t kNetHdrGsoEcn = 0x80;

// Largest frame either way: a 64 KiB GSO packet (IP total length 65535)
// plus an Ethernet header with one VLAN tag.
inline constexpr uint32_t kNetMaxFrameLen = 65535 + 14 + 4;
inline constexpr uint32_t kNetMaxPacketLen = kNetHdrSize + kNetMaxFrameLen;

// Device configuration layout (5.1.4), little endian.
inline constexpr uint64_t kNetConfigMac = 0;
inline constexpr uint64_t kNetConfigStatus = 6;
inline constexpr uint64_t kNetConfigMaxVqPairs = 8;
inline constexpr uint64_t kNetConfigMtu = 10;
inline constexpr uint64_t kNetConfigSize = 12;

}  // namespace rv::virtio
