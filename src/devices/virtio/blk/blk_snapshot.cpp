// VirtioBlk and snapshots: settling in-flight requests so that the rings
// alone describe the device's work (VirtioDevice::quiesce).
#include "devices/virtio/blk/blk_device.h"

namespace rv::virtio {

Result<void> VirtioBlk::quiesce() {
    std::lock_guard lock(m_mutex);
    if (!m_active) return {};
    if (m_held) {
        // Nothing is popped while the limiter holds a request, so it is the
        // last chain its queue gave: back to the ring, unconsumed. Whoever
        // serves the rings next (this device once the VM resumes, or one
        // restored from the snapshot, which is kicked) pops it again, and
        // every queue is looked at again (their kicks were ignored meanwhile).
        m_active->queues[m_held->queue].queue.undo_pop();
        m_held.reset();
        m_limiter_timer.release(m_limiter);
        for (QueueState& q : m_active->queues) q.resume = true;
        if (auto kicked = m_active->kick.write(1); !kicked) return std::unexpected(kicked.error());
    }
    // Requests at the backend finish and are completed; completions release
    // what a FLUSH held back, which is then submitted and waited for too.
    while (m_in_flight > 0 || !m_waiting.empty()) {
        const size_t before = m_in_flight + m_waiting.size();
        pump();
        m_backend->drain();
        m_backend->process_completions(
            [this](uint64_t tag, int64_t result) { on_complete(tag, result); });
        if (m_in_flight + m_waiting.size() >= before && m_backend->pending() == 0)
            return make_error("virtio-blk: {} requests in flight that the backend does not have",
                              m_in_flight);
    }
    signal_if_needed();
    return {};
}

std::vector<Queue::State> VirtioBlk::queue_states() const {
    std::lock_guard lock(m_mutex);
    std::vector<Queue::State> out;
    if (m_active)
        for (const QueueState& q : m_active->queues) out.push_back(q.queue.save());
    return out;
}

}  // namespace rv::virtio
