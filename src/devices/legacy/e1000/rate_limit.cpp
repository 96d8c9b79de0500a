// The e1000's rate limiters: registering their timers, resuming the
// direction a limiter held back, and changing the limits at runtime (see
// e1000.h). The limits themselves are applied in process_tx (tx.cpp) and
// process_rx (e1000.cpp).
#include "devices/legacy/e1000/e1000.h"

namespace rv {

Result<void> E1000::attach_limiter_timer(bool rx) {
    auto on_expiry = [weak = weak_from_this(), rx] {
        if (auto d = weak.lock()) d->on_limiter_timer(rx);
    };
    return with_context((rx ? m_rx_limit : m_tx_limit).timer.attach(m_events, on_expiry),
                        rx ? "e1000: rx rate limiter timer" : "e1000: tx rate limiter timer");
}

// The tokens should be there now (or the limits changed): resume.
void E1000::on_limiter_timer(bool rx) {
    std::lock_guard lock(m_mutex);
    if (rx && std::exchange(m_rx_throttled, false)) process_rx(true);
    if (!rx && std::exchange(m_tx_throttled, false)) process_tx();
    Limit& limit = rx ? m_rx_limit : m_tx_limit;
    if (!(rx ? m_rx_throttled : m_tx_throttled)) limit.timer.release(limit.limiter);
}

Result<void> E1000::set_rx_rate_limiter(std::optional<RateLimiterConfig> config) {
    return set_rate_limiter(true, config);
}

Result<void> E1000::set_tx_rate_limiter(std::optional<RateLimiterConfig> config) {
    return set_rate_limiter(false, config);
}

Result<void> E1000::set_rate_limiter(bool rx, const std::optional<RateLimiterConfig>& config) {
    std::lock_guard lock(m_mutex);
    // The timer first: limits without a way to wait for tokens would strand
    // the packets they refuse.
    if (config && !config->unlimited()) RV_TRY_VOID(attach_limiter_timer(rx));
    Limit& limit = rx ? m_rx_limit : m_tx_limit;
    limit.limiter.reconfigure(config);
    // A held packet retries under the new limits at once, on the loop.
    if (rx ? m_rx_throttled : m_tx_throttled) limit.timer.arm(0);
    return {};
}

int E1000::rx_limiter_timer_fd() const {
    std::lock_guard lock(m_mutex);
    return m_rx_limit.timer.fd();
}

int E1000::tx_limiter_timer_fd() const {
    std::lock_guard lock(m_mutex);
    return m_tx_limit.timer.fd();
}

}  // namespace rv
