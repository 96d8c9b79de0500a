#include "devices/virtio/rng/rng_device.h"

#include <sys/epoll.h>
#include <sys/random.h>

#include <algorithm>

#include "base/log.h"

namespace rv::virtio {

VirtioRng::VirtioRng(EntropySource source, std::optional<RateLimiterConfig> rate_limiter,
                     NsClock clock)
    : m_source(source ? std::move(source) : EntropySource(&VirtioRng::host_entropy)),
      m_limiter(rate_limiter, std::move(clock)) {}

// The kick handler captures `this`: unregister it before we go away.
VirtioRng::~VirtioRng() {
    reset();
}

Result<size_t> VirtioRng::host_entropy(std::span<uint8_t> out) {
    size_t done = 0;
    while (done < out.size()) {
        // GRND_NONBLOCK: this runs on the event loop, which must not wait for
        // the host pool to initialise (only possible very early in host boot).
        ssize_t n = ::getrandom(out.data() + done, out.size() - done, GRND_NONBLOCK);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            return errno_error("getrandom");
        }
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    return done;
}

void VirtioRng::read_config(uint64_t, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), uint8_t{0});
}

void VirtioRng::write_config(uint64_t offset, std::span<const uint8_t> data) {
    log::debug("virtio-rng: ignoring {}-byte config write at {:#x}", data.size(), offset);
}

Result<void> VirtioRng::activate(ActivateArgs args) {
    if (args.queues.size() != 1)
        return make_error("virtio-rng: expected 1 queue, driver enabled {}", args.queues.size());
    reset();  // a repeated DRIVER_OK without reset must not leak the old registration
    auto kick = RV_TRY(EventFd::create(EFD_NONBLOCK));
    int kick_fd = kick.fd();
    RV_TRY_VOID(with_context(args.events.add(kick_fd, EPOLLIN, [this](uint32_t) { on_kick(); }),
                             "virtio-rng: registering kick eventfd"));
    std::unique_lock lock(m_mutex);
    m_active.emplace(Active{&args.memory, std::move(args.interrupt), std::move(args.queues),
                            &args.events, std::move(kick)});
    m_needs_reset = false;
    if (!m_limiter.unlimited()) {
        if (auto attached = attach_limiter_timer_locked(); !attached) {
            m_active.reset();
            lock.unlock();
            args.events.remove(kick_fd);
            return attached;
        }
    }
    // Requests posted before DRIVER_OK were not notified to us.
    Effects fx;
    process_locked(fx);
    finish(lock, fx);
    return {};
}

void VirtioRng::reset() {
    std::optional<Active> old;
    {
        std::lock_guard lock(m_mutex);
        old.swap(m_active);
        m_needs_reset = false;
        m_throttled = false;
        m_limiter_timer.release(m_limiter);
        m_limiter_timer.detach();
    }
    // Outside the lock: the registrar may wait for a running handler, which
    // itself takes m_mutex.
    if (old) old->events->remove(old->kick.fd());
}

void VirtioRng::queue_notify(uint16_t index) {
    std::unique_lock lock(m_mutex);
    if (!m_active || m_needs_reset) return;
    if (index != 0) {
        warn_once_locked(kWarnBadQueue, "notify for a queue the device does not have");
        return;
    }
    Effects fx;
    process_locked(fx);
    finish(lock, fx);
}

bool VirtioRng::needs_reset() const {
    std::lock_guard lock(m_mutex);
    return m_needs_reset;
}

VirtioRng::Stats VirtioRng::stats() const {
    std::lock_guard lock(m_mutex);
    Stats s = m_stats;
    s.throttled_us = m_limiter_timer.held_ns(m_limiter) / 1000;
    return s;
}

DeviceCounters VirtioRng::counters() const {
    std::lock_guard lock(m_mutex);
    return {{"requests", m_stats.requests},
            {"bytes", m_stats.bytes},
            {"empty_requests", m_stats.empty_requests},
            {"source_errors", m_stats.source_errors},
            {"queue_errors", m_stats.queue_errors},
            {"throttled", m_stats.throttled},
            {"throttled_us", m_limiter_timer.held_ns(m_limiter) / 1000},
            {"rate_limited", m_throttled}};
}

Result<void> VirtioRng::attach_limiter_timer_locked() {
    return with_context(m_limiter_timer.attach(*m_active->events, [this] { on_limiter_timer(); }),
                        "virtio-rng: rate limiter timer");
}

Result<void> VirtioRng::set_rate_limiter(std::optional<RateLimiterConfig> config) {
    std::lock_guard lock(m_mutex);
    // The timer first: limits without a way to wait for tokens would strand
    // the requests they refuse.
    if (m_active && config && !config->unlimited()) RV_TRY_VOID(attach_limiter_timer_locked());
    m_limiter.reconfigure(config);
    // The held request retries under the new limits at once, on the loop.
    if (m_throttled) m_limiter_timer.arm(0);
    return {};
}

int VirtioRng::rate_limiter_timer_fd() const {
    std::lock_guard lock(m_mutex);
    return m_limiter_timer.fd();
}

// The tokens for the request the limiter refused should be there now (or
// the limits changed): carry on with the queue.
void VirtioRng::on_limiter_timer() {
    std::unique_lock lock(m_mutex);
    if (!m_active || m_needs_reset || !m_throttled) return;  // stale, or raced with reset()
    m_throttled = false;
    Effects fx;
    process_locked(fx);
    if (!m_throttled) m_limiter_timer.release(m_limiter);  // else still held
    finish(lock, fx);
}

void VirtioRng::on_kick() {
    std::unique_lock lock(m_mutex);
    if (!m_active) return;
    (void)m_active->kick.read();  // nonblocking; an empty read just means a stale wakeup
    if (m_needs_reset) return;
    Effects fx;
    process_locked(fx);
    finish(lock, fx);
}

void VirtioRng::process_locked(Effects& fx) {
    if (m_throttled) return;  // the limiter timer resumes
    Queue& queue = m_active->queues[0];
    const GuestMemory& memory = *m_active->memory;
    size_t bytes = 0;
    bool used_any = false;
    for (size_t chains = 0;; ++chains) {
        if (chains >= queue.size() || bytes >= kMaxBytesPerNotify) {
            // Let other event-loop work run; come back for the rest.
            if (auto kicked = m_active->kick.write(1); !kicked)
                log::warn("virtio-rng: {}", kicked.error().message());
            break;
        }
        auto popped = queue.pop(memory);
        if (!popped) return fail_locked(fx, popped.error());
        if (!*popped) {
            auto more = queue.enable_notification(memory);
            if (!more) return fail_locked(fx, more.error());
            if (*more) continue;
            break;
        }
        const uint64_t asked = std::min<uint64_t>((*popped)->writable_bytes(), kMaxBytesPerRequest);
        if (!m_limiter_timer.admit(m_limiter, asked, 1)) {
            queue.undo_pop();  // back to the ring until the timer fires
            m_throttled = true;
            ++m_stats.throttled;
            break;
        }
        auto len = fill_chain_locked(**popped);
        if (!len) return fail_locked(fx, len.error());
        auto added = queue.add_used(memory, (*popped)->head, *len);
        if (!added) return fail_locked(fx, added.error());
        used_any = true;
        bytes += *len;
        ++m_stats.requests;
        m_stats.bytes += *len;
    }
    if (used_any) {
        auto notify = queue.needs_notification(memory);
        if (!notify) return fail_locked(fx, notify.error());
        fx.signal = *notify;
    }
}

Result<uint32_t> VirtioRng::fill_chain_locked(const DescriptorChain& chain) {
    ChainWriter writer(*m_active->memory, chain);
    if (writer.remaining() == 0) {
        ++m_stats.empty_requests;
        if (!(m_warned & kWarnNoSpace)) {
            m_warned |= kWarnNoSpace;
            log::debug("virtio-rng: request without writable buffers (logged once)");
        }
        return 0u;
    }
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(writer.remaining(), kMaxBytesPerRequest));
    m_scratch.resize(want);
    auto got = m_source(m_scratch);
    if (!got) {
        ++m_stats.source_errors;
        if (!(m_warned & kWarnSource)) {
            m_warned |= kWarnSource;
            log::warn("virtio-rng: entropy source: {} (logged once)", got.error().message());
        }
        return 0u;  // the driver sees an empty answer and asks again
    }
    size_t n = std::min(*got, want);  // never trust a source to stay in bounds
    size_t wrote = RV_TRY(writer.write(std::span<const uint8_t>(m_scratch).first(n)));
    return static_cast<uint32_t>(wrote);
}

void VirtioRng::fail_locked(Effects& fx, const Error& error) {
    ++m_stats.queue_errors;
    if (!(m_warned & kWarnQueue)) {
        m_warned |= kWarnQueue;
        log::warn("virtio-rng: requestq: {}; device needs reset", error.message());
    }
    m_needs_reset = true;
    fx.config_change = true;  // 2.1.2: tell the driver to look at DEVICE_NEEDS_RESET
}

void VirtioRng::warn_once_locked(Warning kind, std::string_view text) {
    if (m_warned & kind) return;
    m_warned |= kind;
    log::warn("virtio-rng: {} (logged once)", text);
}

void VirtioRng::finish(std::unique_lock<std::mutex>& lock, const Effects& fx) {
    std::shared_ptr<Interrupt> interrupt;
    if (m_active) interrupt = m_active->interrupt;
    lock.unlock();
    if (!interrupt) return;
    if (fx.signal) interrupt->signal_used_queue(0);
    if (fx.config_change) interrupt->signal_config_change();
}

std::vector<Queue::State> VirtioRng::queue_states() const {
    std::lock_guard lock(m_mutex);
    std::vector<Queue::State> out;
    if (m_active)
        for (const Queue& q : m_active->queues) out.push_back(q.save());
    return out;
}

}  // namespace rv::virtio
