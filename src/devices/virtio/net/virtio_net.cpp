#include "devices/virtio/net/virtio_net.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "base/log.h"
#include "devices/virtio/net/net_wire.h"

namespace rv::virtio {

Result<std::unique_ptr<VirtioNet>> VirtioNet::create(std::unique_ptr<NetBackend> backend,
                                                     const VirtioNetConfig& config) {
    if (!backend) return make_error("virtio-net: no backend");
    if (config.mac[0] & 1) return make_error("virtio-net: MAC address is a multicast address");
    if (std::all_of(config.mac.begin(), config.mac.end(), [](uint8_t b) { return b == 0; }))
        return make_error("virtio-net: MAC address is all zeros");
    if (config.mtu && *config.mtu < 68)
        return make_error("virtio-net: MTU {} is below the IPv4 minimum of 68", *config.mtu);
    RV_TRY_VOID(with_context(backend->set_vnet_hdr_size(kVnetHdrSize), "virtio-net backend"));
    EventFd kick = RV_TRY(with_context(EventFd::create(EFD_NONBLOCK | EFD_CLOEXEC),
                                       "virtio-net: creating the kick eventfd"));
    return std::unique_ptr<VirtioNet>(new VirtioNet(std::move(backend), config, std::move(kick)));
}

VirtioNet::VirtioNet(std::unique_ptr<NetBackend> backend, const VirtioNetConfig& config,
                     EventFd kick)
    : m_backend(std::move(backend)),
      m_config(config),
      m_kick(std::move(kick)),
      m_bounce(kNetMaxPacketLen + 1),
      m_rx_limit{RateLimiter(config.rx_rate_limiter, config.clock_ns)},
      m_tx_limit{RateLimiter(config.tx_rate_limiter, config.clock_ns)} {}

VirtioNet::~VirtioNet() {
    std::lock_guard lock(m_mutex);
    if (m_active) stop(*m_active);
}

uint64_t VirtioNet::device_features() const {
    uint64_t f = kFVersion1 | kFRingIndirectDesc | kFRingEventIdx | kNetFMac | kNetFStatus |
                 kNetFCsum | kNetFGuestCsum | kNetFHostTso4 | kNetFHostTso6 | kNetFHostEcn |
                 kNetFGuestTso4 | kNetFGuestTso6 | kNetFGuestEcn | kNetFMrgRxbuf;
    if (m_config.mtu) f |= kNetFMtu;
    return f;
}

void VirtioNet::read_config(uint64_t offset, std::span<uint8_t> data) {
    std::array<uint8_t, kNetConfigSize> cfg{};
    std::memcpy(cfg.data() + kNetConfigMac, m_config.mac.data(), m_config.mac.size());
    auto put_le16 = [&](uint64_t at, uint16_t v) {
        cfg[at] = static_cast<uint8_t>(v);
        cfg[at + 1] = static_cast<uint8_t>(v >> 8);
    };
    // The link is always up: a tap has no carrier we could usefully mirror.
    put_le16(kNetConfigStatus, kNetSLinkUp);
    put_le16(kNetConfigMaxVqPairs, 1);
    put_le16(kNetConfigMtu, m_config.mtu.value_or(0));
    for (size_t i = 0; i < data.size(); ++i) {
        // Written so that a huge offset cannot wrap around into the array.
        data[i] = (offset < cfg.size() && i < cfg.size() - offset) ? cfg[offset + i] : 0;
    }
}

void VirtioNet::write_config(uint64_t offset, std::span<const uint8_t> data) {
    // Every field is read-only for a virtio 1.x driver (the MAC is only
    // writable through the control queue, which we do not offer).
    log::debug("virtio-net: ignoring {}-byte config write at {:#x}", data.size(), offset);
}

Result<void> VirtioNet::activate(ActivateArgs args) {
    std::lock_guard lock(m_mutex);
    if (m_active) {
        stop(*m_active);
        m_active.reset();
    }
    if (!(args.acked_features & kFVersion1))
        return make_error("virtio-net: driver did not accept VERSION_1 (legacy is unsupported)");
    if (args.queues.size() != 2)
        return make_error("virtio-net: needs the rx and tx queues, the driver enabled {}",
                          args.queues.size());
    const uint64_t acked = args.acked_features;
    // What the guest can receive decides what the backend may hand us; a
    // driver acking TSO without GUEST_CSUM is out of spec and gets neither.
    NetOffloads offloads;
    offloads.csum = acked & kNetFGuestCsum;
    offloads.tso4 = offloads.csum && (acked & kNetFGuestTso4);
    offloads.tso6 = offloads.csum && (acked & kNetFGuestTso6);
    offloads.ecn = (offloads.tso4 || offloads.tso6) && (acked & kNetFGuestEcn);
    RV_TRY_VOID(with_context(m_backend->set_offloads(offloads), "virtio-net: setting offloads"));

    m_active.emplace(Active{.memory = &args.memory,
                            .interrupt = std::move(args.interrupt),
                            .events = &args.events,
                            .rx = std::move(args.queues[kRxQueue]),
                            .tx = std::move(args.queues[kTxQueue]),
                            .features = acked});
    // A kick still pending from before a reset was for the old rings.
    (void)m_kick.read();
    auto kick = args.events.add(m_kick.fd(), EPOLLIN, [this](uint32_t) { on_kick(); });
    if (!kick) {
        m_active.reset();
        return std::unexpected(kick.error().context("virtio-net: registering the kick eventfd"));
    }
    m_active->kick_registered = true;
    auto added = args.events.add(m_backend->fd(), EPOLLIN,
                                 [this](uint32_t events) { on_backend_event(events); });
    if (!added) {
        stop(*m_active);
        m_active.reset();
        return std::unexpected(added.error().context("virtio-net: registering the backend fd"));
    }
    m_active->interest = EPOLLIN;
    for (uint16_t queue : {kRxQueue, kTxQueue}) {
        if (limit(queue).limiter.unlimited()) continue;
        if (auto attached = attach_limiter_timer(queue); !attached) {
            stop(*m_active);
            m_active.reset();
            return attached;
        }
    }
    m_needs_reset = false;
    return {};
}

void VirtioNet::stop(Active& a) {
    if (a.interest != 0) a.events->remove(m_backend->fd());
    a.interest = 0;
    if (a.kick_registered) a.events->remove(m_kick.fd());
    a.kick_registered = false;
    m_rx_limit.timer.detach();
    m_tx_limit.timer.detach();
}

void VirtioNet::reset() {
    std::lock_guard lock(m_mutex);
    if (m_active) {
        stop(*m_active);
        // A packet read for a guest that is now resetting has nowhere to go.
        if (m_active->rx_pending) ++m_counters.rx_dropped;
        m_active.reset();
        if (auto r = m_backend->set_offloads({}); !r)
            log::warn("virtio-net: clearing offloads on reset: {}", r.error().message());
    }
    m_needs_reset = false;
}

void VirtioNet::queue_notify(uint16_t index) {
    std::lock_guard lock(m_mutex);
    ++m_counters.notifications;
    if (!m_active || m_active->failed) return;
    Active& a = *m_active;
    if (index == kRxQueue) {
        a.rx_stalled = false;
        process_rx(a);
    } else if (index == kTxQueue) {
        process_tx(a);
    }
}

void VirtioNet::on_backend_event(uint32_t events) {
    std::lock_guard lock(m_mutex);
    // The fd may have fired just before a reset unregistered it.
    if (!m_active || m_active->failed) return;
    Active& a = *m_active;
    if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
        warn_once(kWarnBackendGone, "virtio-net: backend hung up; no more packets for the guest");
        a.backend_gone = true;
        update_interest(a);
        return;
    }
    if (events & EPOLLOUT) {
        a.tx_blocked = false;
        process_tx(a);
    }
    if (events & EPOLLIN) process_rx(a);
}

// A pass that ran out of budget left work: finish it on a later turn.
void VirtioNet::on_kick() {
    std::lock_guard lock(m_mutex);
    (void)m_kick.read();  // nonblocking; nothing to read is a stale wake-up
    if (!m_active || m_active->failed) return;
    Active& a = *m_active;
    if (std::exchange(a.tx_resume, false)) process_tx(a);
    if (std::exchange(a.rx_resume, false) && !a.failed) process_rx(a);
}

// A limiter's tokens should be there now (or its limits changed): resume
// the direction it held back.
void VirtioNet::on_limiter_timer(uint16_t queue) {
    std::lock_guard lock(m_mutex);
    if (!m_active || m_active->failed) return;
    Active& a = *m_active;
    if (queue == kRxQueue && std::exchange(a.rx_throttled, false)) process_rx(a);
    if (queue == kTxQueue && std::exchange(a.tx_throttled, false)) process_tx(a);
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
    if (m_active && (queue == kRxQueue ? m_active->rx_throttled : m_active->tx_throttled))
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

// Called by a pass that stops for its budget: the event loop serves the
// other fds first, then the kick brings this direction back.
void VirtioNet::resume_later(bool& resume) {
    ++m_counters.budget_yields;
    if (resume) return;  // already scheduled
    resume = true;
    if (auto r = m_kick.write(1); !r)
        log::error("virtio-net: scheduling the rest of a pass: {}", r.error().message());
}

void VirtioNet::update_interest(Active& a) {
    uint32_t want = 0;
    if (!a.failed && !a.backend_gone) {
        if (!a.rx_stalled && !a.rx_throttled) want |= EPOLLIN;
        if (a.tx_blocked) want |= EPOLLOUT;
    }
    if (want == a.interest) return;
    // The registrar has no "modify": re-register with the new event set.
    if (a.interest != 0) a.events->remove(m_backend->fd());
    a.interest = 0;
    if (want == 0) return;
    auto added =
        a.events->add(m_backend->fd(), want, [this](uint32_t events) { on_backend_event(events); });
    if (!added) {
        log::error("virtio-net: re-registering the backend fd: {} (device needs reset)",
                   added.error().message());
        a.failed = true;
        m_needs_reset = true;
        a.interrupt->signal_config_change();
        return;
    }
    a.interest = want;
}

void VirtioNet::signal_used(Active& a, Queue& queue, uint16_t index) {
    auto needed = queue.needs_notification(*a.memory);
    if (!needed) return fail(a, "reading the used event", needed.error());
    if (*needed) {
        a.interrupt->signal_used_queue(index);
        ++m_counters.interrupts;
    }
}

void VirtioNet::fail(Active& a, std::string_view what, const Error& error) {
    log::error("virtio-net: {}: {} (device needs reset)", what, error.message());
    a.failed = true;
    m_needs_reset = true;
    update_interest(a);  // failed: unregisters, so a readable tap cannot spin the loop
    a.interrupt->signal_config_change();
}

void VirtioNet::warn_once(unsigned bit, std::string_view text) {
    if (m_warned & bit) return;
    m_warned |= bit;
    log::warn("{} (further occurrences only counted)", text);
}

// The statistics plus what RX and TX are waiting for: enough to tell a
// stalled guest driver from a device that stopped polling.
DeviceCounters VirtioNet::counters() const {
    const NetStats s = stats();
    DeviceCounters out{{"rx_packets", s.rx_packets},
                       {"rx_bytes", s.rx_bytes},
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
                       {"tx_throttled", s.tx_throttled}};
    std::lock_guard lock(m_mutex);
    out.emplace_back("active", m_active ? 1 : 0);
    if (m_active) {
        const Active& a = *m_active;
        out.insert(out.end(), {{"rx_waiting_for_buffers", a.rx_stalled},
                               {"tx_waiting_for_backend", a.tx_blocked},
                               {"tx_resume_pending", a.tx_resume},
                               {"rx_resume_pending", a.rx_resume},
                               {"rx_held_packet", a.rx_pending},
                               {"rx_held_chains", a.rx_chains.size()},
                               {"rx_rate_limited", a.rx_throttled},
                               {"tx_rate_limited", a.tx_throttled},
                               {"polled_events", a.interest},
                               {"failed", a.failed},
                               {"backend_gone", a.backend_gone}});
    }
    return out;
}

NetStats VirtioNet::stats() const {
    const Counters& c = m_counters;
    return NetStats{.rx_packets = c.rx_packets,
                    .rx_bytes = c.rx_bytes,
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
                    .tx_throttled = c.tx_throttled};
}

}  // namespace rv::virtio
