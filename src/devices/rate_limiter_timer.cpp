#include "devices/rate_limiter_timer.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "base/log.h"

namespace rv {

Result<void> LimiterTimer::attach(EventRegistrar& events, std::function<void()> on_expiry) {
    if (m_fd) return {};
    int raw = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (raw < 0) return errno_error("rate limiter: timerfd_create");
    auto fd = std::make_shared<Fd>(raw);
    RV_TRY_VOID(with_context(events.add(raw, EPOLLIN,
                                        [fd, on_expiry = std::move(on_expiry)](uint32_t) {
                                            // Clears the fd's readiness; nothing to read
                                            // (re-armed since) is fine.
                                            uint64_t expirations = 0;
                                            (void)::read(fd->get(), &expirations,
                                                         sizeof(expirations));
                                            on_expiry();
                                        }),
                             "rate limiter: registering the timer"));
    m_fd = std::move(fd);
    m_events = &events;
    return {};
}

void LimiterTimer::detach() {
    if (!m_fd) return;
    disarm();
    m_events->remove(m_fd->get());
    // The registrar's copy of the handler may still hold the fd open for a
    // moment; it closes with the last reference.
    m_fd.reset();
    m_events = nullptr;
}

void LimiterTimer::arm(uint64_t ns) {
    if (!m_fd) return;
    // 0 would disarm: "at once" is the next nanosecond.
    ns = std::max<uint64_t>(ns, 1);
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(
        std::min<uint64_t>(ns / 1'000'000'000ull, std::numeric_limits<time_t>::max()));
    spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000ull);
    // Cannot fail on a valid timerfd with a normalised value.
    if (::timerfd_settime(m_fd->get(), 0, &spec, nullptr) < 0)
        log::error("rate limiter: timerfd_settime: {}", std::strerror(errno));
}

void LimiterTimer::disarm() {
    if (!m_fd) return;
    itimerspec spec{};
    (void)::timerfd_settime(m_fd->get(), 0, &spec, nullptr);
}

bool LimiterTimer::wait_for(RateLimiter& limiter, uint64_t bytes, uint64_t ops) {
    if (!m_fd) {
        // A device attaches the timer before it puts a limiter in force; if
        // that ever fails to hold, letting the work through beats holding it
        // for a wake-up that cannot come.
        log::error("rate limiter: no timer to wait with; not throttling");
        return true;
    }
    arm(limiter.ns_until_available(bytes, ops));
    // A clock reading of 0 still begins a hold.
    if (m_held_since == 0) m_held_since = std::max<uint64_t>(limiter.now(), 1);
    return false;
}

namespace {
uint64_t elapsed(uint64_t since, uint64_t now) { return now > since ? now - since : 0; }
}  // namespace

void LimiterTimer::release(const RateLimiter& limiter) {
    const uint64_t since = m_held_since.exchange(0);
    if (since != 0) m_held_ns += elapsed(since, limiter.now());
}

uint64_t LimiterTimer::held_ns(const RateLimiter& limiter) const {
    const uint64_t since = m_held_since;
    return m_held_ns + (since != 0 ? elapsed(since, limiter.now()) : 0);
}

}  // namespace rv
