// virtio-net feature bits and config layout (virtio 1.2, 5.1). The packet
// header (5.1.6) is the tap's too: backends/net/vnet_hdr.h.
#pragma once

#include <cstdint>

#include "backends/net/vnet_hdr.h"

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
inline constexpr uint64_t kNetFGuestAnnounce = 1ull << 21;  // needs CTRL_VQ
inline constexpr uint64_t kNetFMq = 1ull << 22;

// The config space's status field (5.1.4).
inline constexpr uint16_t kNetSLinkUp = 1;
inline constexpr uint16_t kNetSAnnounce = 2;  // announce yourself; the driver ACKs it

// Largest frame either way: a 64 KiB GSO packet (IP total length 65535)
// plus an Ethernet header with one VLAN tag.
inline constexpr uint32_t kNetMaxFrameLen = 65535 + 14 + 4;
inline constexpr uint32_t kNetMaxPacketLen = kVnetHdrSize + kNetMaxFrameLen;

// Device configuration layout (5.1.4), little endian.
inline constexpr uint64_t kNetConfigMac = 0;
inline constexpr uint64_t kNetConfigStatus = 6;
inline constexpr uint64_t kNetConfigMaxVqPairs = 8;
inline constexpr uint64_t kNetConfigMtu = 10;
inline constexpr uint64_t kNetConfigSize = 12;

// Control queue (5.1.6.5): class, command, data (device-readable), then the
// ack byte (device-writable).
inline constexpr uint8_t kNetCtrlOk = 0;
inline constexpr uint8_t kNetCtrlErr = 1;
inline constexpr uint8_t kNetCtrlAnnounce = 3;
inline constexpr uint8_t kNetCtrlAnnounceAck = 0;  // no data (5.1.6.5.4)
inline constexpr uint8_t kNetCtrlMq = 4;
inline constexpr uint8_t kNetCtrlMqVqPairsSet = 0;  // data: le16 virtqueue_pairs

}  // namespace rv::virtio
