// TX path: guest chains to the backend, zero-copy.
#include <array>
#include <climits>

#include "base/iovec_copy.h"
#include "base/log.h"
#include "devices/virtio/net/net_wire.h"
#include "devices/virtio/net/virtio_net.h"

namespace rv::virtio {

namespace {

// Why a TX chain cannot be sent, or nullptr if it can.
const char* tx_chain_problem(const DescriptorChain& chain) {
    if (chain.writable_bytes() != 0) return "has device-writable buffers";
    const uint64_t len = chain.readable_bytes();
    if (len < kVnetHdrSize) return "is shorter than the 12-byte virtio-net header";
    if (len > kNetMaxPacketLen) return "holds a frame larger than 64 KiB";
    return nullptr;
}

}  // namespace

void VirtioNet::process_tx(Active& a, Pair& p) {
    if (p.tx_blocked) return;    // the EPOLLOUT handler resumes
    if (p.tx_throttled) return;  // the limiter timer resumes
    const GuestMemory& mem = *a.memory;
    // With EVENT_IDX the driver names the completion it wants to hear of, so
    // decide per chain: it frees a sent skb while we send the rest, and TCP's
    // in-flight limit does not wait for a whole burst. Without it, one
    // decision per batch (`used`: one is owed).
    const bool per_chain = a.features & kFRingEventIdx;
    bool used = false;
    // A driver that republishes as fast as we send would keep us here for
    // good: past the budget, finish on a later event-loop turn.
    unsigned budget = kTxBudget;
    for (;;) {
        if (budget == 0) {
            resume_later(p.tx_resume);
            break;
        }
        auto popped = p.tx.pop(mem);
        if (!popped) return fail(a, "tx queue", popped.error());
        if (!*popped) {
            // Ring empty: ask for a kick, then re-check for buffers the
            // driver published without kicking meanwhile.
            auto more = p.tx.enable_notification(mem);
            if (!more) return fail(a, "tx queue", more.error());
            if (*more) continue;
            break;
        }
        const DescriptorChain& chain = **popped;
        --budget;

        const char* problem = tx_chain_problem(chain);
        m_tx_iov.clear();
        if (!problem) {
            for (const DescriptorBuffer& b : chain.buffers) {
                if (!mem.append_iovecs(b.addr, b.len, m_tx_iov)) {
                    problem = "has a buffer outside guest memory";
                    break;
                }
            }
            if (!problem && m_tx_iov.size() > IOV_MAX) problem = "has more than 1024 segments";
        }
        if (problem) {
            ++m_counters.tx_errors;
            warn_once(kWarnTxBadChain,
                      fmt::format("virtio-net: dropping tx chain {} that {}", chain.head, problem));
        } else {
            const uint64_t frame = chain.readable_bytes() - kVnetHdrSize;
            if (!m_tx_limit.timer.admit(m_tx_limit.limiter, frame, 1)) {
                // Back to the ring until the limiter timer fires.
                p.tx.undo_pop();
                p.tx_throttled = true;
                ++m_counters.tx_throttled;
                break;
            }
            // The header goes to the backend as the guest wrote it: a tap
            // validates it (gso fields, csum offsets) and applies the offloads.
            // With several pairs, a flow's pure ACKs leave by the queue it
            // last sent data from, so the tap keeps steering it there
            // (net_flows.h); if that queue is full, by our own.
            NetBackend* out = p.backend;
            if (a.active_pairs > 1) {
                std::array<uint8_t, kTxFlowHeadBytes> head;
                // (A copy: the guest's bytes are never parsed in place.)
                const size_t n = copy_iovecs<IovecCopy::FromIovecs>(m_tx_iov, 0, head.data(),
                                                                    head.size());
                const unsigned q = a.flows.pick(classify_tx(std::span(head.data(), n)), p.index,
                                                a.active_pairs);
                out = a.pairs[q].backend;
            }
            auto sent = out->writev(m_tx_iov);
            if (sent && !*sent && out != p.backend) sent = p.backend->writev(m_tx_iov);
            if (!sent) {
                ++m_counters.tx_dropped;
                warn_once(kWarnTxRefused, fmt::format("virtio-net: backend refused a tx packet: {}",
                                                      sent.error().message()));
            } else if (!*sent) {
                // Backend full: give the chain back and wait for EPOLLOUT
                // rather than drop; the guest's own queue absorbs the burst.
                p.tx.undo_pop();
                p.tx_blocked = true;
                ++m_counters.tx_backpressure;
                m_tx_limit.limiter.refund(frame, 1);  // charged again when it goes
                break;
            } else {
                ++m_counters.tx_packets;
                m_counters.tx_bytes += chain.readable_bytes() - kVnetHdrSize;
            }
        }
        // TX chains have no device-writable part: used length 0.
        if (auto r = p.tx.add_used(mem, chain.head, 0); !r) return fail(a, "tx queue", r.error());
        if (per_chain) {
            signal_used(a, p.tx, tx_queue(p.index));
            if (a.failed) return;
        } else {
            used = true;
        }
    }
    if (used) signal_used(a, p.tx, tx_queue(p.index));
    update_interest(a, p);
}

}  // namespace rv::virtio
