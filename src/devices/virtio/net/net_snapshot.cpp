// VirtioNet and snapshots: giving held rx chains back to the ring, the
// queue positions, the pairs the driver asked for and a pending announce.
#include "devices/virtio/net/virtio_net.h"

namespace rv::virtio {

namespace {

// save_state's bytes: le16 pairs served, then a flags byte. The flags came
// with GUEST_ANNOUNCE; a state of the u16 alone (written before) has none
// set, so it still restores.
constexpr uint8_t kStateAnnounce = 1 << 0;  // VIRTIO_NET_S_ANNOUNCE set, not yet ACKed
constexpr uint8_t kStateFlags = kStateAnnounce;

}  // namespace

Result<void> VirtioNet::quiesce() {
    std::lock_guard lock(m_mutex);
    if (!m_active) return {};
    Active& a = *m_active;
    for (Pair& p : a.pairs) {
        if (p.rx_chains.empty() && !p.rx_pending) continue;
        if (p.rx_pending) ++m_counters.rx_dropped;
        if (!p.rx_gap) {
            // Delivered chains leave from the front, so the held ones are the
            // last the ring gave: back to it, unconsumed.
            for (size_t i = 0; i < p.rx_chains.size(); ++i) p.rx.undo_pop();
        } else {
            // Only a driver that posts unusable rx buffers gets here: its
            // held chains go back empty, as unusable ones do.
            for (const DescriptorChain& chain : p.rx_chains)
                if (auto r = p.rx.add_used(*a.memory, chain.head, 0); !r)
                    return make_error("virtio-net: returning held rx chains: {}",
                                      r.error().message());
        }
        drop_rx_chains(p);
        // Should the VM go on, the pair looks at its ring and tap again.
        p.rx_stalled = false;
        if (!p.rx_throttled && p.index < a.active_pairs) resume_later(p.rx_resume);
    }
    return {};
}

std::vector<Queue::State> VirtioNet::queue_states() const {
    std::lock_guard lock(m_mutex);
    std::vector<Queue::State> out;
    if (!m_active) return out;
    const Active& a = *m_active;
    for (uint16_t index : a.given) {
        if (index < 2 * a.pairs.size()) {
            const Pair& p = a.pairs[index / 2];
            out.push_back(index % 2 == 0 ? p.rx.save() : p.tx.save());
        } else if (a.ctrl && index == a.ctrl_index) {
            out.push_back(a.ctrl->save());
        } else {
            out.push_back(Queue::State{});  // enabled but never used
        }
    }
    return out;
}

std::vector<uint8_t> VirtioNet::save_state() const {
    std::lock_guard lock(m_mutex);
    if (!m_active) return {};
    snapshot::Writer w;
    w.u16(static_cast<uint16_t>(m_active->active_pairs));
    w.u8(m_active->announce ? kStateAnnounce : 0);
    return w.take();
}

Result<void> VirtioNet::restore_state(std::span<const uint8_t> state) {
    if (state.empty()) return {};
    snapshot::Reader r(state, "virtio-net state");
    const uint16_t pairs = r.u16();
    const uint8_t flags = r.remaining() > 0 ? r.u8() : 0;
    RV_TRY_VOID(r.finish());
    if (flags & ~kStateFlags)
        return input_error("virtio-net state: unknown flags {:#x}", flags & ~kStateFlags);
    const bool announce = flags & kStateAnnounce;
    std::lock_guard lock(m_mutex);
    if (!m_active) return input_error("virtio-net state: served pairs for an inactive device");
    Active& a = *m_active;
    if (pairs == 0 || pairs > a.pairs.size())
        return input_error("virtio-net state: {} pairs served, the device has {}", pairs,
                           a.pairs.size());
    // The transport re-activated the device with the saved features: a bit
    // the saved driver could not have been told of is not a state we wrote.
    if (announce && !announce_negotiated(a.features))
        return input_error("virtio-net state: an announce pending without GUEST_ANNOUNCE");
    if (pairs != a.active_pairs) set_active_pairs(a, pairs);
    if (a.failed) return make_error("virtio-net: serving {} pairs failed", pairs);
    // Not signalled again: a config interrupt the driver had not yet taken
    // came back with the transport's and the vCPUs' state, and
    // on_resumed_elsewhere announces anew.
    a.announce = announce;
    return {};
}

}  // namespace rv::virtio
