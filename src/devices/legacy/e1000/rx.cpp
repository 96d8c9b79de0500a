#include "devices/legacy/e1000/rx.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>

#include "base/log.h"

namespace rv::e1000 {

namespace {

constexpr uint32_t kEthHeader = 14;
constexpr uint32_t kMinFrame = 60;       // without FCS; shorter frames are padded
constexpr uint32_t kMaxStdFrame = 1518;  // without FCS, one VLAN tag allowed (RCTL.LPE off)
constexpr uint32_t kFcsLen = 4;

uint16_t be16(std::span<const uint8_t> b, size_t at) {
    return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}

bool vlan_tagged(const RegisterFile& regs, std::span<const uint8_t> frame) {
    return (regs.get(reg::kCtrl) & kCtrlVme) && frame.size() >= kEthHeader + 4 &&
           be16(frame, 12) == static_cast<uint16_t>(regs.get(reg::kVet));
}

// RCTL.MO picks which 12 bits of the destination address index the
// 4096-bit multicast table.
uint32_t mta_hash(uint32_t rctl, std::span<const uint8_t> dst) {
    uint32_t shift = 4 - ((rctl >> kRctlMoShift) & 3);
    return ((dst[4] >> shift) | (uint32_t{dst[5]} << (8 - shift))) & 0xFFF;
}

}  // namespace

// The Ethernet FCS is zlib's CRC-32 (same polynomial, reflection, initial
// value and final inversion); zlib's word-at-a-time version is several
// times faster than a byte table, and it runs for every received frame.
uint32_t ethernet_crc32(std::span<const uint8_t> data) {
    return static_cast<uint32_t>(::crc32_z(::crc32_z(0, nullptr, 0), data.data(), data.size()));
}

std::optional<Ring> rx_ring(const GuestMemory& memory, const RegisterFile& regs) {
    uint32_t len = regs.get(reg::kRdlen);
    if (len == 0 || len % kRingLenAlign != 0 || len > (1u << 20)) return std::nullopt;
    uint64_t base = (uint64_t{regs.get(reg::kRdbah)} << 32) | (regs.get(reg::kRdbal) & ~0xFu);
    if (!memory.check_range(GuestAddress(base), len)) return std::nullopt;
    Ring ring{.base = base,
              .count = len / kDescSize,
              .head = regs.get(reg::kRdh),
              .tail = regs.get(reg::kRdt)};
    if (ring.head >= ring.count || ring.tail >= ring.count) return std::nullopt;
    return ring;
}

uint32_t rx_buffer_size(uint32_t rctl) {
    uint32_t bsize = (rctl >> kRctlBsizeShift) & 3;
    if (rctl & kRctlBsex) {
        static constexpr std::array<uint32_t, 4> kExtended{2048, 16384, 8192, 4096};
        return kExtended[bsize];  // 00 is reserved with BSEX; treated as 2048
    }
    static constexpr std::array<uint32_t, 4> kNormal{2048, 1024, 512, 256};
    return kNormal[bsize];
}

bool RxEngine::ready(const GuestMemory& memory, const RegisterFile& regs) {
    if (!(regs.get(reg::kRctl) & kRctlEn)) return false;
    auto ring = rx_ring(memory, regs);
    return ring && ring->available() > 0;
}

bool RxEngine::accepts(const RegisterFile& regs, std::span<const uint8_t> frame) {
    if (frame.size() < kEthHeader) return false;
    const uint32_t rctl = regs.get(reg::kRctl);
    if ((rctl & kRctlVfe) && vlan_tagged(regs, frame)) {
        uint32_t vid = be16(frame, 14) & 0xFFF;
        if (!((regs.get(reg::kVfta + 4 * (vid >> 5)) >> (vid & 31)) & 1)) return false;
    }
    std::span<const uint8_t> dst = frame.first(6);
    const bool multicast = dst[0] & 1;
    if (std::all_of(dst.begin(), dst.end(), [](uint8_t b) { return b == 0xFF; }))
        return (rctl & kRctlBam) || (rctl & kRctlMpe);
    if (multicast ? (rctl & kRctlMpe) : (rctl & kRctlUpe)) return true;
    for (uint32_t at = reg::kRal0; at < reg::kRaEnd; at += 8) {
        uint32_t high = regs.get(at + 4);
        if (!(high & kRahAv)) continue;
        uint64_t want = regs.get(at) | (uint64_t{high & 0xFFFF} << 32);
        uint64_t got = 0;
        for (int i = 0; i < 6; ++i) got |= uint64_t{dst[i]} << (8 * i);
        if (want == got) return true;
    }
    if (!multicast) return false;
    uint32_t hash = mta_hash(rctl, dst);
    return (regs.get(reg::kMta + 4 * (hash >> 5)) >> (hash & 31)) & 1;
}

RxEngine::Outcome RxEngine::deliver(const GuestMemory& memory, RegisterFile& regs,
                                    std::span<const uint8_t> frame, uint32_t& causes) {
    if (frame.size() < kEthHeader) return Outcome::kDropped;
    auto ring = rx_ring(memory, regs);
    const uint32_t rctl = regs.get(reg::kRctl);
    if (!ring || !(rctl & kRctlEn)) return Outcome::kNoRoom;
    if (!(rctl & kRctlLpe) && frame.size() > kMaxStdFrame) {
        regs.count(stat::kRoc);
        return Outcome::kDropped;  // a long frame the guest did not enable
    }
    // The frame as the guest sees it: VLAN tag stripped into the descriptor
    // (CTRL.VME), padded to the minimum, FCS appended unless SECRC.
    bool vlan = vlan_tagged(regs, frame);
    uint16_t tci = vlan ? be16(frame, 14) : 0;
    m_buf.assign(frame.begin(), frame.end());
    if (vlan) m_buf.erase(m_buf.begin() + 12, m_buf.begin() + 16);
    if (m_buf.size() < kMinFrame) m_buf.resize(kMinFrame, 0);
    if (!(rctl & kRctlSecrc)) {
        uint32_t fcs = ethernet_crc32(m_buf);
        for (uint32_t i = 0; i < kFcsLen; ++i)
            m_buf.push_back(static_cast<uint8_t>(fcs >> (8 * i)));
    }
    const uint32_t bsize = rx_buffer_size(rctl);
    const uint32_t needed = static_cast<uint32_t>((m_buf.size() + bsize - 1) / bsize);
    if (needed >= ring->count) {
        // Could never fit, even in an empty ring: an overrun on real hardware.
        regs.count(stat::kMpc);
        causes |= kIntRxo;
        return Outcome::kDropped;
    }
    if (needed > ring->available()) return Outcome::kNoRoom;

    uint32_t head = ring->head;
    size_t done = 0;
    for (uint32_t i = 0; i < needed; ++i) {
        GuestAddress at(ring->base + uint64_t{head} * kDescSize);
        auto addr = memory.read_obj<uint64_t>(at);
        size_t chunk = std::min<size_t>(bsize, m_buf.size() - done);
        uint8_t errors = 0;
        // A buffer outside RAM would be a master abort on real hardware; the
        // descriptor still completes, flagged with an RX error.
        if (!addr || !memory.write(GuestAddress(*addr), std::span(m_buf).subspan(done, chunk)))
            errors = kRxErrRxe;
        bool last = i + 1 == needed;
        std::array<uint8_t, 8> wb{};
        put_le16(wb.data(), static_cast<uint16_t>(chunk));
        wb[4] = static_cast<uint8_t>(kRxStaDd | kRxStaIxsm | (last ? kRxStaEop : 0) |
                                     (last && vlan ? kRxStaVp : 0));
        wb[5] = errors;
        put_le16(wb.data() + 6, last && vlan ? tci : 0);
        // The driver may poll DD without an interrupt: the packet bytes
        // must be visible before the status that hands them over.
        std::atomic_thread_fence(std::memory_order_release);
        (void)memory.write(GuestAddress(at.value + 8), wb);
        done += chunk;
        head = (head + 1) % ring->count;
    }
    regs.set(reg::kRdh, head);

    const uint32_t octets =
        static_cast<uint32_t>(m_buf.size() + ((rctl & kRctlSecrc) ? kFcsLen : 0));
    regs.count(stat::kGprc);
    regs.count(stat::kTpr);
    regs.count64(stat::kGorcl, octets);
    regs.count64(stat::kTorl, octets);
    if (std::all_of(frame.begin(), frame.begin() + 6, [](uint8_t b) { return b == 0xFF; }))
        regs.count(stat::kBprc);
    else if (frame[0] & 1)
        regs.count(stat::kMprc);

    causes |= kIntRxt0;
    Ring after = *ring;
    after.head = head;
    uint32_t threshold = ring->count >> (1 + std::min(2u, (rctl >> kRctlRdmtsShift) & 3));
    if (after.available() <= threshold) causes |= kIntRxdmt0;
    return Outcome::kDelivered;
}

}  // namespace rv::e1000
