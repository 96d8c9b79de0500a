// The rx and tx rate limiters (one each for the whole device, shared by all
// queue pairs) and the counters.
#include <algorithm>
#include <utility>

#include "devices/virtio/net/virtio_net.h"

namespace rv::virtio {

// A limiter's tokens should be there now (or its limits changed): resume
// every pair it held back, starting from a different pair each time, so a
// busy pair 0 cannot take every refill.
void VirtioNet::on_limiter_timer(uint16_t queue) {
    std::lock_guard lock(m_mutex);
    if (!m_active || m_active->failed) return;
    Active& a = *m_active;
    const bool rx = queue == kRxQueue;
    unsigned& turn = rx ? a.rx_timer_turn : a.tx_timer_turn;
    const unsigned n = a.active_pairs;
    const unsigned first = turn++ % n;
    for (unsigned i = 0; i < n && !a.failed; ++i) {
        Pair& p = a.pairs[(first + i) % n];
        if (rx && std::exchange(p.rx_throttled, false)) process_rx(a, p);
        if (!rx && std::exchange(p.tx_throttled, false)) process_tx(a, p);
    }
    // The hold goes on while a pair is still (or again) held.
    if (std::ranges::none_of(a.pairs.begin(), a.pairs.begin() + n, [rx](const Pair& p) {
            return rx ? p.rx_throttled : p.tx_throttled;
        }))
        limit(queue).timer.release(limit(queue).limiter);
}

Result<void> VirtioNet::attach_limiter_timer(uint16_t queue) {
    return with_context(
        limit(queue).timer.attach(*m_active->events, [this, queue] { on_limiter_timer(queue); }),
        queue == kRxQueue ? "virtio-net: rx rate limiter timer"
                          : "virtio-net: tx rate limiter timer");
}

Result<void> VirtioNet::set_rx_rate_limiter(std::optional<RateLimiterConfig> config) {
    return set_rate_limiter(kRxQueue, config);
}

Result<void> VirtioNet::set_tx_rate_limiter(std::optional<RateLimiterConfig> config) {
    return set_rate_limiter(kTxQueue, config);
}

Result<void> VirtioNet::set_rate_limiter(uint16_t queue,
                                         const std::optional<RateLimiterConfig>& config) {
    std::lock_guard lock(m_mutex);
    // The timer first: limits without a way to wait for tokens would strand
    // what they refuse.
    if (m_active && config && !config->unlimited()) RV_TRY_VOID(attach_limiter_timer(queue));
    Limit& l = limit(queue);
    l.limiter.reconfigure(config);
    // What the limiter holds back retries under the new limits at once, on
    // the loop (an unlimited limiter lets it through).
    if (m_active && std::ranges::any_of(m_active->pairs, [&](const Pair& p) {
            return queue == kRxQueue ? p.rx_throttled : p.tx_throttled;
        }))
        l.timer.arm(0);
    return {};
}

int VirtioNet::rx_limiter_timer_fd() const {
    std::lock_guard lock(m_mutex);
    return m_rx_limit.timer.fd();
}

int VirtioNet::tx_limiter_timer_fd() const {
    std::lock_guard lock(m_mutex);
    return m_tx_limit.timer.fd();
}

// The statistics plus what RX and TX are waiting for: enough to tell a
// stalled guest driver from a device that stopped polling. With several
// pairs a state counts the pairs in it.
DeviceCounters VirtioNet::counters() const {
    const NetStats s = stats();
    DeviceCounters out{{"rx_packets", s.rx_packets},
                       {"rx_bytes", s.rx_bytes},
                       {"rx_in_place", s.rx_in_place},
                       {"tx_packets", s.tx_packets},
                       {"tx_bytes", s.tx_bytes},
                       {"rx_dropped", s.rx_dropped},
                       {"tx_dropped", s.tx_dropped},
                       {"rx_errors", s.rx_errors},
                       {"tx_errors", s.tx_errors},
                       {"tx_backpressure", s.tx_backpressure},
                       {"notifications", s.notifications},
                       {"interrupts", s.interrupts},
                       {"budget_yields", s.budget_yields},
                       {"rx_throttled", s.rx_throttled},
                       {"tx_throttled", s.tx_throttled},
                       {"rx_throttled_us", s.rx_throttled_us},
                       {"tx_throttled_us", s.tx_throttled_us},
                       {"ctrl_commands", s.ctrl_commands},
                       {"ctrl_errors", s.ctrl_errors},
                       {"announces", s.announces}};
    const bool multi = queue_pairs() > 1;
    if (multi) out.emplace_back("queue_pairs", queue_pairs());
    std::lock_guard lock(m_mutex);
    out.emplace_back("active", m_active ? 1 : 0);
    if (m_active) {
        const Active& a = *m_active;
        auto pairs_where = [&](auto pred) {
            return static_cast<uint64_t>(std::ranges::count_if(a.pairs, pred));
        };
        uint32_t polled = 0;
        size_t held_chains = 0;
        for (const Pair& p : a.pairs) {
            polled |= p.interest;
            held_chains += p.rx_chains.size();
        }
        auto put = [&](const char* name, uint64_t value) { out.emplace_back(name, value); };
        put("rx_waiting_for_buffers", pairs_where([](const Pair& p) { return p.rx_stalled; }));
        put("tx_waiting_for_backend", pairs_where([](const Pair& p) { return p.tx_blocked; }));
        put("tx_resume_pending", pairs_where([](const Pair& p) { return p.tx_resume; }));
        put("rx_resume_pending", pairs_where([](const Pair& p) { return p.rx_resume; }));
        put("rx_held_packet", pairs_where([](const Pair& p) { return p.rx_pending; }));
        put("rx_held_chains", held_chains);
        put("rx_rate_limited", pairs_where([](const Pair& p) { return p.rx_throttled; }));
        put("tx_rate_limited", pairs_where([](const Pair& p) { return p.tx_throttled; }));
        put("polled_events", polled);
        put("failed", a.failed);
        put("backend_gone", pairs_where([](const Pair& p) { return p.backend_gone; }));
        put("announce_pending", a.announce);
        if (multi) out.emplace_back("active_pairs", a.active_pairs);
    }
    return out;
}

NetStats VirtioNet::stats() const {
    const Counters& c = m_counters;
    auto held_us = [](const Limit& l) { return l.timer.held_ns(l.limiter) / 1000; };
    return NetStats{.rx_packets = c.rx_packets,
                    .rx_bytes = c.rx_bytes,
                    .rx_in_place = c.rx_in_place,
                    .tx_packets = c.tx_packets,
                    .tx_bytes = c.tx_bytes,
                    .rx_dropped = c.rx_dropped,
                    .tx_dropped = c.tx_dropped,
                    .rx_errors = c.rx_errors,
                    .tx_errors = c.tx_errors,
                    .tx_backpressure = c.tx_backpressure,
                    .notifications = c.notifications,
                    .interrupts = c.interrupts,
                    .budget_yields = c.budget_yields,
                    .rx_throttled = c.rx_throttled,
                    .tx_throttled = c.tx_throttled,
                    .rx_throttled_us = held_us(m_rx_limit),
                    .tx_throttled_us = held_us(m_tx_limit),
                    .ctrl_commands = c.ctrl_commands,
                    .ctrl_errors = c.ctrl_errors,
                    .announces = c.announces};
}

}  // namespace rv::virtio
