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
    std::vector<std::unique_ptr<NetBackend>> backends;
    backends.push_back(std::move(backend));
    return create(std::move(backends), config);
}

Result<std::unique_ptr<VirtioNet>> VirtioNet::create(
    std::vector<std::unique_ptr<NetBackend>> backends, const VirtioNetConfig& config) {
    if (backends.empty() || backends.size() > kMaxQueuePairs)
        return make_error("virtio-net: {} queue pairs (1..{})", backends.size(), kMaxQueuePairs);
    if (std::ranges::any_of(backends, [](const auto& b) { return !b; }))
        return make_error("virtio-net: no backend");
    if (config.mac[0] & 1) return make_error("virtio-net: MAC address is a multicast address");
    if (std::all_of(config.mac.begin(), config.mac.end(), [](uint8_t b) { return b == 0; }))
        return make_error("virtio-net: MAC address is all zeros");
    if (config.mtu && *config.mtu < 68)
        return make_error("virtio-net: MTU {} is below the IPv4 minimum of 68", *config.mtu);
    for (auto& backend : backends)
        RV_TRY_VOID(with_context(backend->set_vnet_hdr_size(kVnetHdrSize), "virtio-net backend"));
    EventFd kick = RV_TRY(with_context(EventFd::create(EFD_NONBLOCK | EFD_CLOEXEC),
                                       "virtio-net: creating the kick eventfd"));
    return std::unique_ptr<VirtioNet>(new VirtioNet(std::move(backends), config, std::move(kick)));
}

VirtioNet::VirtioNet(std::vector<std::unique_ptr<NetBackend>> backends,
                     const VirtioNetConfig& config, EventFd kick)
    : m_backends(std::move(backends)),
      m_config(config),
      m_kick(std::move(kick)),
      m_bounce(m_backends.size(), std::vector<uint8_t>(kNetMaxPacketLen + 1)),
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
    // The control queue is where the driver acknowledges an announce, and
    // where multiqueue switches pairs on (5.1.3.1: both need it).
    f |= kNetFCtrlVq | kNetFGuestAnnounce;
    if (queue_pairs() > 1) f |= kNetFMq;
    return f;
}

std::vector<uint16_t> VirtioNet::queue_max_sizes() const {
    std::vector<uint16_t> sizes(2 * queue_pairs(), kQueueSize);
    sizes.push_back(kCtrlQueueSize);  // 2N: CTRL_VQ is always offered
    return sizes;
}

unsigned VirtioNet::active_pairs() const {
    std::lock_guard lock(m_mutex);
    return m_active ? m_active->active_pairs : 0;
}

void VirtioNet::read_config(uint64_t offset, std::span<uint8_t> data) {
    std::array<uint8_t, kNetConfigSize> cfg{};
    std::memcpy(cfg.data() + kNetConfigMac, m_config.mac.data(), m_config.mac.size());
    auto put_le16 = [&](uint64_t at, uint16_t v) {
        cfg[at] = static_cast<uint8_t>(v);
        cfg[at + 1] = static_cast<uint8_t>(v >> 8);
    };
    // The link is always up: a tap has no carrier we could usefully mirror.
    uint16_t status = kNetSLinkUp;
    {
        std::lock_guard lock(m_mutex);
        if (m_active && m_active->announce) status |= kNetSAnnounce;
    }
    put_le16(kNetConfigStatus, status);
    put_le16(kNetConfigMaxVqPairs, static_cast<uint16_t>(queue_pairs()));
    put_le16(kNetConfigMtu, m_config.mtu.value_or(0));
    for (size_t i = 0; i < data.size(); ++i) {
        // Written so that a huge offset cannot wrap around into the array.
        data[i] = (offset < cfg.size() && i < cfg.size() - offset) ? cfg[offset + i] : 0;
    }
}

void VirtioNet::write_config(uint64_t offset, std::span<const uint8_t> data) {
    // Every field is read-only for a virtio 1.x driver (the MAC is only
    // writable through the control queue's MAC class, which we do not offer).
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
    const uint64_t acked = args.acked_features;
    // What the guest can receive decides what the backend may hand us; a
    // driver acking TSO without GUEST_CSUM is out of spec and gets neither.
    NetOffloads offloads;
    offloads.csum = acked & kNetFGuestCsum;
    offloads.tso4 = offloads.csum && (acked & kNetFGuestTso4);
    offloads.tso6 = offloads.csum && (acked & kNetFGuestTso6);
    offloads.ecn = (offloads.tso4 || offloads.tso6) && (acked & kNetFGuestEcn);
    RV_TRY_VOID(build_active(args));
    for (auto& backend : m_backends) {
        if (auto r = backend->set_offloads(offloads); !r) {
            m_active.reset();
            return std::unexpected(r.error().context("virtio-net: setting offloads"));
        }
    }
    // Only pair 0 until the driver asks for more: the other tap queues are
    // detached, so the kernel steers every flow to the one we read.
    for (Pair& p : m_active->pairs) attach_queue(p, p.index == 0);
    for (unsigned k = static_cast<unsigned>(m_active->pairs.size()); k < queue_pairs(); ++k)
        if (auto r = m_backends[k]->set_queue_attached(false); !r)
            warn_once(kWarnQueueAttach, fmt::format("virtio-net: {}", r.error().message()));
    if (auto r = register_events(*m_active); !r) {
        stop(*m_active);
        m_active.reset();
        return r;
    }
    m_needs_reset = false;
    return {};
}

// The queues the negotiated features call for (5.1.2), taken by index from
// the ones the driver enabled; fills m_active.
Result<void> VirtioNet::build_active(ActivateArgs& args) {
    const uint64_t acked = args.acked_features;
    const bool mq = acked & kNetFMq;
    const bool ctrl = acked & kNetFCtrlVq;
    if (mq && !ctrl) return make_error("virtio-net: the driver accepted MQ without CTRL_VQ");
    // GUEST_ANNOUNCE without CTRL_VQ is out of spec too, but costs nothing
    // to tolerate: such a driver is never asked to announce (announce()).
    const unsigned pairs = mq ? queue_pairs() : 1;
    const size_t needed = 2 * pairs + (ctrl ? 1 : 0);
    std::vector<std::optional<Queue>> by_index(needed);
    std::vector<uint16_t> given;
    for (size_t i = 0; i < args.queues.size(); ++i) {
        const size_t index = args.queue_indices.empty() ? i : args.queue_indices.at(i);
        given.push_back(static_cast<uint16_t>(index));
        if (index < needed) by_index[index] = std::move(args.queues[i]);
    }
    for (size_t q = 0; q < needed; ++q)
        if (!by_index[q])
            return make_error(
                "virtio-net: needs {} queues ({} rx/tx pair{}{}), the driver did not enable "
                "queue {}",
                needed, pairs, pairs == 1 ? "" : "s", ctrl ? " and the control queue" : "", q);
    Active a{.memory = &args.memory,
             .interrupt = std::move(args.interrupt),
             .events = &args.events,
             .features = acked,
             .given = std::move(given)};
    a.pairs.reserve(pairs);
    for (unsigned k = 0; k < pairs; ++k)
        a.pairs.push_back(Pair{.index = k,
                               .backend = m_backends[k].get(),
                               .bounce = m_bounce[k],
                               .rx = std::move(*by_index[rx_queue(k)]),
                               .tx = std::move(*by_index[tx_queue(k)])});
    if (ctrl) {
        a.ctrl_index = static_cast<uint16_t>(2 * pairs);
        a.ctrl = std::move(*by_index[a.ctrl_index]);
    }
    m_active.emplace(std::move(a));
    return {};
}

Result<void> VirtioNet::register_events(Active& a) {
    // A kick still pending from before a reset was for the old rings.
    (void)m_kick.read();
    RV_TRY_VOID(with_context(a.events->add(m_kick.fd(), EPOLLIN, [this](uint32_t) { on_kick(); }),
                             "virtio-net: registering the kick eventfd"));
    a.kick_registered = true;
    Pair& p0 = a.pairs[0];
    RV_TRY_VOID(
        with_context(a.events->add(p0.backend->fd(), EPOLLIN,
                                   [this](uint32_t events) { on_backend_event(0, events); }),
                     "virtio-net: registering the backend fd"));
    p0.interest = EPOLLIN;
    for (uint16_t queue : {kRxQueue, kTxQueue})
        if (!limit(queue).limiter.unlimited()) RV_TRY_VOID(attach_limiter_timer(queue));
    return {};
}

void VirtioNet::stop(Active& a) {
    for (Pair& p : a.pairs) {
        if (p.interest != 0) a.events->remove(p.backend->fd());
        p.interest = 0;
    }
    if (a.kick_registered) a.events->remove(m_kick.fd());
    a.kick_registered = false;
    m_rx_limit.timer.detach();
    m_tx_limit.timer.detach();
    m_rx_limit.timer.release(m_rx_limit.limiter);
    m_tx_limit.timer.release(m_tx_limit.limiter);
}

void VirtioNet::reset() {
    std::lock_guard lock(m_mutex);
    // Dropping m_active also drops a pending announce: a new driver starts
    // from a status of LINK_UP alone.
    if (m_active) {
        stop(*m_active);
        // A packet read for a guest that is now resetting has nowhere to go.
        for (const Pair& p : m_active->pairs)
            if (p.rx_pending) ++m_counters.rx_dropped;
        m_active.reset();
        for (auto& backend : m_backends)
            if (auto r = backend->set_offloads({}); !r)
                log::warn("virtio-net: clearing offloads on reset: {}", r.error().message());
    }
    m_needs_reset = false;
}

void VirtioNet::queue_notify(uint16_t index) {
    std::lock_guard lock(m_mutex);
    ++m_counters.notifications;
    if (!m_active || m_active->failed) return;
    Active& a = *m_active;
    if (a.ctrl && index == a.ctrl_index) return process_ctrl(a);
    const unsigned pair = index / 2;
    // A pair the driver has not switched on is not served (5.1.6.5.5).
    if (pair >= a.active_pairs || pair >= a.pairs.size()) return;
    Pair& p = a.pairs[pair];
    if (index == rx_queue(pair)) {
        p.rx_stalled = false;
        process_rx(a, p);
    } else {
        process_tx(a, p);
    }
}

void VirtioNet::on_backend_event(unsigned pair, uint32_t events) {
    std::lock_guard lock(m_mutex);
    // The fd may have fired just before a reset (or VQ_PAIRS_SET) unregistered it.
    if (!m_active || m_active->failed || pair >= m_active->active_pairs) return;
    Active& a = *m_active;
    Pair& p = a.pairs[pair];
    if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
        warn_once(kWarnBackendGone, "virtio-net: backend hung up; no more packets for the guest");
        p.backend_gone = true;
        update_interest(a, p);
        return;
    }
    if (events & EPOLLOUT) {
        p.tx_blocked = false;
        process_tx(a, p);
    }
    if ((events & EPOLLIN) && !a.failed) process_rx(a, p);
}

// A pass that ran out of budget left work: finish it on a later turn.
void VirtioNet::on_kick() {
    std::lock_guard lock(m_mutex);
    (void)m_kick.read();  // nonblocking; nothing to read is a stale wake-up
    if (!m_active || m_active->failed) return;
    Active& a = *m_active;
    for (unsigned k = 0; k < a.active_pairs && !a.failed; ++k) {
        Pair& p = a.pairs[k];
        if (std::exchange(p.tx_resume, false)) process_tx(a, p);
        if (std::exchange(p.rx_resume, false) && !a.failed) process_rx(a, p);
    }
    if (std::exchange(a.ctrl_resume, false) && !a.failed) process_ctrl(a);
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

void VirtioNet::update_interest(Active& a, Pair& p) {
    uint32_t want = 0;
    if (!a.failed && !p.backend_gone && p.index < a.active_pairs) {
        if (!p.rx_stalled && !p.rx_throttled) want |= EPOLLIN;
        if (p.tx_blocked) want |= EPOLLOUT;
    }
    if (want == p.interest) return;
    // The registrar has no "modify": re-register with the new event set.
    if (p.interest != 0) a.events->remove(p.backend->fd());
    p.interest = 0;
    if (want == 0) return;
    auto added = a.events->add(p.backend->fd(), want, [this, pair = p.index](uint32_t events) {
        on_backend_event(pair, events);
    });
    if (!added) {
        log::error("virtio-net: re-registering the backend fd: {} (device needs reset)",
                   added.error().message());
        a.failed = true;
        m_needs_reset = true;
        for (Pair& other : a.pairs) {
            if (other.interest != 0) a.events->remove(other.backend->fd());
            other.interest = 0;
        }
        a.interrupt->signal_config_change();
        return;
    }
    p.interest = want;
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
    // failed: unregisters every pair, so a readable tap cannot spin the loop
    for (Pair& p : a.pairs) update_interest(a, p);
    a.interrupt->signal_config_change();
}

void VirtioNet::warn_once(unsigned bit, std::string_view text) {
    if (m_warned & bit) return;
    m_warned |= bit;
    log::warn("{} (further occurrences only counted)", text);
}

}  // namespace rv::virtio
