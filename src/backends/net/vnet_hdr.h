// The virtio-net header (struct virtio_net_hdr_v1, virtio 1.2 5.1.6) that
// precedes every packet on a tap opened with IFF_VNET_HDR and
// TUNSETVNETHDRSZ 12. It is the backend's wire format, shared by every NIC
// model that talks to one: virtio-net passes it between guest and tap, the
// e1000 builds it from its transmit offloads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace rv {

// In virtio 1.x the header always carries num_buffers, so it is 12 bytes in
// both directions, with or without MRG_RXBUF.
inline constexpr uint32_t kVnetHdrSize = 12;
inline constexpr uint32_t kVnetHdrNumBuffersOffset = 10;

// flags
inline constexpr uint8_t kVnetFlagNeedsCsum = 1;  // sum from csum_start to the end
inline constexpr uint8_t kVnetFlagDataValid = 2;  // checksum already verified
// gso_type
inline constexpr uint8_t kVnetGsoNone = 0;
inline constexpr uint8_t kVnetGsoTcpv4 = 1;
inline constexpr uint8_t kVnetGsoUdp = 3;
inline constexpr uint8_t kVnetGsoTcpv6 = 4;
inline constexpr uint8_t kVnetGsoEcn = 0x80;  // ORed into a TCP type: CWR set

// The header in host form. The wire form is little endian (virtio 1.x, and
// what the tap reads with TUNSETVNETLE or on a little-endian host); go
// through encode()/decode() rather than copying the struct's bytes.
struct VnetHdr {
    uint8_t flags{0};
    uint8_t gso_type{kVnetGsoNone};
    uint16_t hdr_len{0};
    uint16_t gso_size{0};
    uint16_t csum_start{0};
    uint16_t csum_offset{0};
    uint16_t num_buffers{0};

    std::array<uint8_t, kVnetHdrSize> encode() const {
        std::array<uint8_t, kVnetHdrSize> out{};
        out[0] = flags;
        out[1] = gso_type;
        put_le16(out, 2, hdr_len);
        put_le16(out, 4, gso_size);
        put_le16(out, 6, csum_start);
        put_le16(out, 8, csum_offset);
        put_le16(out, kVnetHdrNumBuffersOffset, num_buffers);
        return out;
    }

    static VnetHdr decode(std::span<const uint8_t, kVnetHdrSize> in) {
        return VnetHdr{.flags = in[0],
                       .gso_type = in[1],
                       .hdr_len = le16(in, 2),
                       .gso_size = le16(in, 4),
                       .csum_start = le16(in, 6),
                       .csum_offset = le16(in, 8),
                       .num_buffers = le16(in, kVnetHdrNumBuffersOffset)};
    }

  private:
    static uint16_t le16(std::span<const uint8_t, kVnetHdrSize> b, size_t at) {
        return static_cast<uint16_t>(b[at] | (b[at + 1] << 8));
    }
    static void put_le16(std::span<uint8_t, kVnetHdrSize> b, size_t at, uint16_t v) {
        b[at] = static_cast<uint8_t>(v);
        b[at + 1] = static_cast<uint8_t>(v >> 8);
    }
};
// The host form mirrors the wire layout field for field.
static_assert(sizeof(VnetHdr) == kVnetHdrSize);
static_assert(offsetof(VnetHdr, gso_type) == 1);
static_assert(offsetof(VnetHdr, num_buffers) == kVnetHdrNumBuffersOffset);

}  // namespace rv
