// VirtioNet and snapshots: giving held rx chains back to the ring, the
// queue positions and the pairs the driver asked for.
#include "devices/virtio/net/virtio_net.h"

namespace rv::virtio {

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
        p.rx_chains.clear();
        p.rx_pending = false;
        p.rx_len = 0;
        p.rx_capacity = 0;
        p.rx_gap = false;
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
    return w.take();
}

Result<void> VirtioNet::restore_state(std::span<const uint8_t> state) {
    if (state.empty()) return {};
    snapshot::Reader r(state, "virtio-net state");
    const uint16_t pairs = r.u16();
    RV_TRY_VOID(r.finish());
    std::lock_guard lock(m_mutex);
    if (!m_active) return input_error("virtio-net state: served pairs for an inactive device");
    Active& a = *m_active;
    if (pairs == 0 || pairs > a.pairs.size())
        return input_error("virtio-net state: {} pairs served, the device has {}", pairs,
                           a.pairs.size());
    if (pairs != a.active_pairs) set_active_pairs(a, pairs);
    if (a.failed) return make_error("virtio-net: serving {} pairs failed", pairs);
    return {};
}

}  // namespace rv::virtio
