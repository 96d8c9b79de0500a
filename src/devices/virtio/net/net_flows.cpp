#include "devices/virtio/net/net_flows.h"

#include <cstddef>

#include "backends/net/vnet_hdr.h"

namespace rv::virtio {

namespace {

constexpr size_t kEth = kVnetHdrSize;  // the frame starts after the header
constexpr size_t kL3 = kEth + 14;      // an untagged Ethernet header
constexpr uint8_t kTcp = 6;
constexpr uint8_t kUdp = 17;
constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04;

class Reader {
  public:
    explicit Reader(std::span<const uint8_t> bytes) : m_bytes(bytes) {}
    bool has(size_t off, size_t len) const { return off + len <= m_bytes.size(); }
    uint32_t be(size_t off, size_t len) const {
        uint32_t v = 0;
        for (size_t i = 0; i < len; ++i) v = (v << 8) | m_bytes[off + i];
        return v;
    }

  private:
    std::span<const uint8_t> m_bytes;
};

uint32_t mix(uint32_t h) {
    h ^= h >> 16;
    h *= 0x45d9f3bu;
    return h ^ (h >> 16);
}

}  // namespace

TxFlow classify_tx(std::span<const uint8_t> head) {
    const Reader r(head);
    if (!r.has(kEth + 12, 2)) return {};  // (covers the header's gso_type too)
    const bool gso = (r.be(offsetof(VnetHdr, gso_type), 1) & ~kVnetGsoEcn) != kVnetGsoNone;
    const uint32_t type = r.be(kEth + 12, 2);
    uint32_t key = 0;
    uint8_t proto = 0;
    size_t l4 = 0;
    uint32_t l4_len = 0;  // transport header and payload, from the IP header
    if (type == 0x0800) {
        if (!r.has(kL3, 20)) return {};
        const size_t ihl = (r.be(kL3, 1) & 0xf) * 4u;
        const uint32_t total = r.be(kL3 + 2, 2);
        if (ihl < 20 || total < ihl) return {};
        if (r.be(kL3 + 6, 2) & 0x3fff) return {};  // a fragment: no ports to key on
        proto = static_cast<uint8_t>(r.be(kL3 + 9, 1));
        key = r.be(kL3 + 12, 4) ^ mix(r.be(kL3 + 16, 4));
        l4 = kL3 + ihl;
        l4_len = total - static_cast<uint32_t>(ihl);
    } else if (type == 0x86dd) {
        if (!r.has(kL3, 40)) return {};
        proto = static_cast<uint8_t>(r.be(kL3 + 6, 1));  // extension headers: not keyed
        for (size_t word = 0; word < 8; ++word) key = mix(key ^ r.be(kL3 + 8 + 4 * word, 4));
        l4 = kL3 + 40;
        l4_len = r.be(kL3 + 4, 2);
    } else {
        return {};
    }
    if ((proto != kTcp && proto != kUdp) || !r.has(l4, 4)) return {};
    TxFlow out;
    out.flow = true;
    out.key = mix(key ^ (proto << 16) ^ r.be(l4, 4));
    if (proto == kTcp && !gso && r.has(l4 + 12, 2)) {
        const uint32_t doff = (r.be(l4 + 12, 1) >> 4) * 4u;
        const uint8_t flags = static_cast<uint8_t>(r.be(l4 + 13, 1));
        out.pure_ack = doff >= 20 && l4_len == doff && !(flags & (kTcpFin | kTcpSyn | kTcpRst));
    }
    return out;
}

unsigned FlowQueues::pick(const TxFlow& flow, unsigned from, unsigned active_pairs) {
    if (!flow.flow || from >= active_pairs) return from;
    uint8_t& pinned = m_pinned[flow.key & 0xff];
    if (flow.pure_ack && pinned < active_pairs) return pinned;
    pinned = static_cast<uint8_t>(from);
    return from;
}

}  // namespace rv::virtio
