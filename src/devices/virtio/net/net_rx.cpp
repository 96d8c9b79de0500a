// RX path: backend packets into guest chains, read straight into them or
// through the bounce buffer (virtio_net.h).
#include <algorithm>
#include <climits>
#include <cstddef>
#include <span>

#include "base/iovec_copy.h"
#include "base/log.h"
#include "devices/virtio/net/net_wire.h"
#include "devices/virtio/net/virtio_net.h"

namespace rv::virtio {

void VirtioNet::process_rx(Active& a, Pair& p) {
    // Held by the rate limiter (EPOLLIN is off): its timer resumes.
    if (p.rx_throttled) return;
    bool used = false;
    // A tap that never runs dry (or a driver that republishes unusable
    // chains) would keep us here for good: past the budget, finish on a
    // later event-loop turn. Work in progress stays in the pair (rx_pending,
    // rx_chains), so the next pass picks it up where this one stopped.
    unsigned budget = kRxBudget;
    while (!a.failed && !p.backend_gone) {
        if (!p.rx_pending) {
            if (budget == 0) {
                resume_later(p.rx_resume);
                break;
            }
            // Only take a packet off the backend with a guest buffer in hand,
            // so a slow guest leaves packets queued in the tap, not dropped.
            if (p.rx_chains.empty()) {
                PopResult got = pop_rx_chain(a, p, used, budget);
                if (got == PopResult::Failed) return;
                if (got == PopResult::Empty) {
                    p.rx_stalled = true;
                    break;
                }
                if (got == PopResult::OutOfBudget) {
                    resume_later(p.rx_resume);
                    break;
                }
            }
            // With MRG_RXBUF, chains enough for the largest packet let it be
            // read straight into them. A ring without that many (or a pass
            // out of budget) leaves the bounce buffer to it, and so do small
            // buffers: holding hundreds would only cost their pops.
            while ((a.features & kNetFMrgRxbuf) && p.rx_capacity <= kNetMaxPacketLen &&
                   p.rx_chains.back().writable_bytes() >= kRxDirectMinChain) {
                PopResult got = pop_rx_chain(a, p, used, budget);
                if (got == PopResult::Failed) return;
                if (got != PopResult::Got) break;
            }
            if (!take_rx_packet(a, p)) break;
            if (budget > 0) --budget;     // (the chain may have taken the last unit)
            if (!p.rx_pending) continue;  // dropped a bad packet; try the next
        }
        const bool mergeable = a.features & kNetFMrgRxbuf;
        bool wait_for_buffers = false;
        bool out_of_budget = false;
        while (p.rx_capacity < p.rx_len) {
            // Without MRG_RXBUF a packet must fit one chain; a driver that
            // posts smaller buffers than its features promise loses it. With
            // it, holding the whole ring and still lacking room is the same.
            if ((!mergeable && !p.rx_chains.empty()) || p.rx_chains.size() >= p.rx.size()) {
                ++m_counters.rx_dropped;
                warn_once(kWarnRxTooBig,
                          fmt::format("virtio-net: dropping a {}-byte packet: the guest's rx "
                                      "buffers are too small",
                                      p.rx_len));
                p.rx_pending = false;
                break;
            }
            PopResult got = pop_rx_chain(a, p, used, budget);
            if (got == PopResult::Failed) return;
            if (got == PopResult::Empty) {
                p.rx_stalled = true;
                wait_for_buffers = true;
                break;
            }
            if (got == PopResult::OutOfBudget) {
                resume_later(p.rx_resume);
                out_of_budget = true;
                break;
            }
        }
        if (wait_for_buffers || out_of_budget) break;
        if (!p.rx_pending) continue;
        // Asked only now, with the chains in hand, so a packet that has to
        // wait for buffers is not charged twice.
        if (!m_rx_limit.timer.admit(m_rx_limit.limiter, p.rx_len - kVnetHdrSize, 1)) {
            ++m_counters.rx_throttled;
            p.rx_throttled = true;  // the packet stays held with its chains
            break;
        }
        if (!deliver_rx_packet(a, p)) return;
        // One interrupt decision per batch, unlike TX: deciding per packet
        // (as TX does) raised host->guest TCP interrupts from 2.6 to 4.2
        // per MiB in bench/io with no gain in throughput.
        used = true;
    }
    if (used) signal_used(a, p.rx, rx_queue(p.index));
    update_interest(a, p);
}

// Takes the next usable chain, returning unusable ones on the way; each
// chain taken costs a unit of `budget`.
VirtioNet::PopResult VirtioNet::pop_rx_chain(Active& a, Pair& p, bool& used, unsigned& budget) {
    const GuestMemory& mem = *a.memory;
    for (;;) {
        if (budget == 0) return PopResult::OutOfBudget;
        auto popped = p.rx.pop(mem);
        if (!popped) {
            fail(a, "rx queue", popped.error());
            return PopResult::Failed;
        }
        if (!*popped) {
            auto more = p.rx.enable_notification(mem);
            if (!more) {
                fail(a, "rx queue", more.error());
                return PopResult::Failed;
            }
            if (*more) continue;
            return PopResult::Empty;
        }
        DescriptorChain& chain = **popped;
        --budget;
        // Every rx buffer must be device-writable and hold at least the
        // header (5.1.6.3.1), so the header never straddles chains.
        if (chain.readable_bytes() != 0 || chain.writable_bytes() < kVnetHdrSize) {
            ++m_counters.rx_errors;
            warn_once(kWarnRxBadChain,
                      fmt::format("virtio-net: returning unusable rx chain {} ({} readable, {} "
                                  "writable bytes)",
                                  chain.head, chain.readable_bytes(), chain.writable_bytes()));
            if (auto r = p.rx.add_used(mem, chain.head, 0); !r) {
                fail(a, "rx queue", r.error());
                return PopResult::Failed;
            }
            used = true;
            if (!p.rx_chains.empty()) p.rx_gap = true;
            continue;
        }
        hold_rx_chain(a, p, std::move(chain));
        return PopResult::Got;
    }
}

void VirtioNet::hold_rx_chain(const Active& a, Pair& p, DescriptorChain&& chain) {
    p.rx_capacity += chain.writable_bytes();
    for (const DescriptorBuffer& b : chain.buffers) {
        // Marked as written once written (take_rx_packet).
        auto host = a.memory->host_range_unmarked(b.addr, b.len);
        p.rx_iov.push_back(iovec{host ? *host : nullptr, b.len});
    }
    p.rx_chains.push_back(std::move(chain));
}

// The first `n` held chains went back to the driver.
void VirtioNet::release_rx_chains(Pair& p, size_t n) {
    size_t entries = 0;
    for (size_t i = 0; i < n; ++i) {
        p.rx_capacity -= p.rx_chains[i].writable_bytes();
        entries += p.rx_chains[i].buffers.size();
    }
    p.rx_iov.erase(p.rx_iov.begin(), p.rx_iov.begin() + static_cast<long>(entries));
    p.rx_chains.erase(p.rx_chains.begin(), p.rx_chains.begin() + static_cast<long>(n));
    if (p.rx_chains.empty()) p.rx_gap = false;
}

// Forgets the held chains and the packet pending in them or in bounce (the
// caller has given the chains back, or the driver is resetting).
void VirtioNet::drop_rx_chains(Pair& p) {
    p.rx_chains.clear();
    p.rx_iov.clear();
    p.rx_pending = false;
    p.rx_in_place = false;
    p.rx_len = 0;
    p.rx_capacity = 0;
    p.rx_gap = false;
}

// How many rx_iov entries a packet can be read straight into: the fewest
// leading ones that take the largest packet and one byte more (to see one
// too long), all in host memory, at most IOV_MAX; without MRG_RXBUF they
// must all be the first chain's. 0: the packet goes through the bounce buffer.
size_t VirtioNet::direct_rx_entries(const Active& a, const Pair& p) const {
    if (p.rx_chains.empty()) return 0;
    const size_t limit = std::min<size_t>(
        IOV_MAX, (a.features & kNetFMrgRxbuf) ? p.rx_iov.size() : p.rx_chains.front().buffers.size());
    uint64_t room = 0;
    for (size_t i = 0; i < limit; ++i) {
        if (p.rx_iov[i].iov_base == nullptr) return 0;
        room += p.rx_iov[i].iov_len;
        if (room > kNetMaxPacketLen) return i + 1;
    }
    return 0;
}

// Reads one packet, straight into the held chains when they can take any
// (direct_rx_entries), else into the bounce buffer; its header ends up in
// the bounce buffer either way. Returns false when the backend has nothing
// (or is gone); true with rx_pending set when a packet is ready, or unset
// when a bad packet was dropped (read in place, it leaves the chains held).
bool VirtioNet::take_rx_packet(Active& a, Pair& p) {
    const size_t direct = direct_rx_entries(a, p);
    iovec bounce{p.bounce.data(), p.bounce.size()};
    auto got = p.backend->readv(direct ? std::span(p.rx_iov).first(direct) : std::span(&bounce, 1));
    if (!got) {
        // tun read errors are not transient (EBADFD: the interface is gone);
        // polling on would spin the event loop.
        ++m_counters.rx_errors;
        warn_once(kWarnBackendGone, fmt::format("virtio-net: backend read failed: {}; no more "
                                                "packets for the guest",
                                                got.error().message()));
        p.backend_gone = true;
        return false;
    }
    if (!*got) return false;  // EAGAIN: EPOLLIN brings us back
    const size_t n = **got;
    if (n == 0) {
        warn_once(kWarnBackendGone, "virtio-net: backend closed; no more packets for the guest");
        p.backend_gone = true;
        return false;
    }
    if (direct) {
        // The bytes are the guest's now: marked for dirty tracking, and the
        // header copied out (once: the guest may write its buffers) to be
        // checked and rewritten.
        const GuestMemory& mem = *a.memory;
        if (mem.dirty_tracking()) {
            // What the read filled: the first n bytes of the iovecs it was given.
            uint64_t left = n;
            for (const iovec& v : std::span(p.rx_iov).first(direct)) {
                const iovec filled{v.iov_base, std::min<size_t>(v.iov_len, left)};
                mem.mark_written(std::span(&filled, 1));
                if ((left -= filled.iov_len) == 0) break;
            }
        }
        copy_iovecs<IovecCopy::FromIovecs>(std::span(p.rx_iov).first(direct), 0, p.bounce.data(),
                                           kVnetHdrSize);
    }
    if (n < kVnetHdrSize || n > kNetMaxPacketLen) {
        ++m_counters.rx_dropped;
        warn_once(kWarnRxBadPacket,
                  fmt::format("virtio-net: dropping a {}-byte packet from the backend", n));
        return true;
    }
    const auto hdr_bytes = std::span(p.bounce).first<kVnetHdrSize>();
    VnetHdr hdr = VnetHdr::decode(hdr_bytes);
    if (!rx_offloads_allowed(a, p)) {
        ++m_counters.rx_dropped;
        warn_once(kWarnRxBadPacket, fmt::format("virtio-net: dropping a packet with gso type "
                                                "{:#x} the guest did not negotiate",
                                                hdr.gso_type));
        return true;
    }
    // DATA_VALID / NEEDS_CSUM mean nothing to a driver without GUEST_CSUM,
    // which must then see flags 0 (5.1.6.4.1).
    if (!(a.features & kNetFGuestCsum)) hdr.flags = 0;
    std::ranges::copy(hdr.encode(), hdr_bytes.begin());
    p.rx_len = n;
    p.rx_pending = true;
    p.rx_in_place = direct != 0;
    return true;
}

// Whether the packet in the bounce buffer only uses offloads the driver
// accepted. Packets queued in the tap before a reset may carry old ones.
bool VirtioNet::rx_offloads_allowed(const Active& a, const Pair& p) const {
    const uint8_t gso = p.bounce[offsetof(VnetHdr, gso_type)];
    if ((gso & kVnetGsoEcn) && !(a.features & kNetFGuestEcn)) return false;
    switch (gso & ~kVnetGsoEcn) {
        case kVnetGsoNone:
            return !(gso & kVnetGsoEcn);
        case kVnetGsoTcpv4:
            return a.features & kNetFGuestTso4;
        case kVnetGsoTcpv6:
            return a.features & kNetFGuestTso6;
        default:
            return false;  // UDP (UFO) is not offered; anything else is unknown
    }
}

// Copies the pending packet into the first held chains that together hold
// it and returns them to the driver. Any chains beyond those stay held for
// the next packet (possible after a drop left the whole ring held).
bool VirtioNet::deliver_rx_packet(Active& a, Pair& p) {
    const GuestMemory& mem = *a.memory;
    size_t needed = 0;
    for (uint64_t room = 0; room < p.rx_len; ++needed) room += p.rx_chains[needed].writable_bytes();
    const uint16_t num_buffers = static_cast<uint16_t>(needed);
    p.bounce[kVnetHdrNumBuffersOffset] = static_cast<uint8_t>(num_buffers);
    p.bounce[kVnetHdrNumBuffersOffset + 1] = static_cast<uint8_t>(num_buffers >> 8);

    size_t offset = 0;
    for (size_t i = 0; i < needed; ++i) {
        const DescriptorChain& chain = p.rx_chains[i];
        // In place, only the header goes over the one read (the packet's
        // bytes already fill the chains in order); else the whole packet.
        const size_t to_write = p.rx_in_place ? (i == 0 ? kVnetHdrSize : 0) : p.rx_len - offset;
        uint64_t len = 0;
        if (to_write > 0) {
            ChainWriter writer(mem, chain);
            auto written = writer.write(std::span(p.bounce.data() + offset, to_write));
            if (!written) {
                fail(a, "writing an rx packet", written.error());
                return false;
            }
            len = *written;
        }
        if (p.rx_in_place) len = std::min<uint64_t>(p.rx_len - offset, chain.writable_bytes());
        offset += len;
        // A merged packet's buffers reach the driver together (5.1.6.4): it
        // reads num_buffers from the first and takes the rest at once.
        if (auto r = p.rx.add_used_unpublished(mem, chain.head, static_cast<uint32_t>(len)); !r) {
            fail(a, "rx queue", r.error());
            return false;
        }
    }
    if (auto r = p.rx.publish_used(mem); !r) {
        fail(a, "rx queue", r.error());
        return false;
    }
    ++m_counters.rx_packets;
    m_counters.rx_bytes += p.rx_len - kVnetHdrSize;
    if (p.rx_in_place) ++m_counters.rx_in_place;
    p.rx_pending = false;
    p.rx_in_place = false;
    release_rx_chains(p, needed);
    return true;
}

}  // namespace rv::virtio
