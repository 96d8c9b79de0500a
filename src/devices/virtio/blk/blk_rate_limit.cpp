// virtio-blk's rate limiter: the timer that brings back the request it
// held (see blk_device.h) and runtime changes of the limits. The limiter is
// asked in handle_chain (blk_device.cpp).
#include "devices/virtio/blk/blk_device.h"

namespace rv::virtio {

using blk::Request;

// The tokens for the held request should be there now (or the limits
// changed): execute it and drain what queued up behind it.
void VirtioBlk::on_limiter_timer() {
    std::lock_guard lock(m_mutex);
    if (!m_active || !m_held || m_needs_reset) return;  // stale, or raced with reset()
    if (!m_limiter_timer.admit(m_limiter, m_held->data_len, 1)) {
        ++m_stats.throttled;  // still short (limits lowered meanwhile): re-armed
        return;
    }
    Request request = std::move(*m_held);
    m_held.reset();
    m_limiter_timer.release(m_limiter);
    execute(std::move(request));
    drain_all();
    signal_if_needed();
}

Result<void> VirtioBlk::attach_limiter_timer() {
    return with_context(m_limiter_timer.attach(*m_active->events, [this] { on_limiter_timer(); }),
                        "virtio-blk: rate limiter timer");
}

Result<void> VirtioBlk::set_rate_limiter(std::optional<RateLimiterConfig> config) {
    std::lock_guard lock(m_mutex);
    // The timer first: limits without a way to wait for tokens would strand
    // the requests they refuse.
    if (m_active && config && !config->unlimited()) RV_TRY_VOID(attach_limiter_timer());
    m_limiter.reconfigure(config);
    // The held request retries under the new limits at once, on the loop
    // (an unlimited limiter lets it and everything behind it through).
    if (m_held) m_limiter_timer.arm(0);
    return {};
}

int VirtioBlk::rate_limiter_timer_fd() const {
    std::lock_guard lock(m_mutex);
    return m_limiter_timer.fd();
}

}  // namespace rv::virtio
