// The wake-up for work a RateLimiter held back: a one-shot timerfd on the
// device's event loop, armed for the moment the tokens will be there. A
// throttled device stops taking work from that queue or ring (it neither
// spins nor sleeps on the loop) and resumes from on_expiry.
//
// A device keeps one per limiter and attaches it only once a limiter is in
// force, so a device without limits has no extra fd and arms nothing:
//
//   if (!m_timer.admit(m_limiter, bytes, 1)) { hold the work; return; }
//
// It also keeps the time its limiter held work back, for the device's
// counters: a hold begins at a refusal (admit returning false) and ends when
// the device has let go of everything it held (release), both on the
// limiter's clock.
//
// Threads: attach/detach/arm/disarm/admit/release under the owning device's
// lock, held_ns from any thread;
// on_expiry runs on the event-loop thread without it (it takes the lock
// itself). The expiration count is read by the registered handler, which
// holds its own reference to the fd: a handler already running while the
// device detaches never reads a closed (or reused) descriptor.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "base/error.h"
#include "base/fd.h"
#include "devices/event_registrar.h"
#include "devices/rate_limiter.h"

namespace rv {

class LimiterTimer {
  public:
    LimiterTimer() = default;
    ~LimiterTimer() { detach(); }
    LimiterTimer(const LimiterTimer&) = delete;
    LimiterTimer& operator=(const LimiterTimer&) = delete;

    // Creates the timerfd and registers it with `events` (EPOLLIN);
    // on_expiry runs each time it fires. Does nothing if already attached.
    // `events` must outlive the attachment.
    Result<void> attach(EventRegistrar& events, std::function<void()> on_expiry);
    // Unregisters and closes the timer; nothing fires afterwards. Safe when
    // not attached.
    void detach();
    bool attached() const { return m_fd != nullptr; }
    // The timerfd (-1 when not attached), for tests that fire it by hand.
    int fd() const { return m_fd ? m_fd->get() : -1; }

    // Fires once, `ns` from now (0: at once); replaces any earlier arming.
    void arm(uint64_t ns);
    void disarm();

    // Takes the tokens, or arms the timer for when they will be there and
    // returns false: the caller holds the work and retries from on_expiry.
    // One branch when the limiter is unlimited.
    bool admit(RateLimiter& limiter, uint64_t bytes, uint64_t ops) {
        if (limiter.consume(bytes, ops)) [[likely]]
            return true;
        return wait_for(limiter, bytes, ops);
    }

    // The device holds nothing back any more (the timer let it all go, or a
    // reset dropped it): the hold in progress, if any, ends now.
    void release(const RateLimiter& limiter);
    // Nanoseconds the limiter held work back: the holds that ended and the
    // one in progress (a hold ending while this reads may be missed once).
    uint64_t held_ns(const RateLimiter& limiter) const;

  private:
    bool wait_for(RateLimiter& limiter, uint64_t bytes, uint64_t ops);

    std::atomic<uint64_t> m_held_since{0};  // the limiter's clock; 0: no hold
    std::atomic<uint64_t> m_held_ns{0};     // the holds that ended

    std::shared_ptr<Fd> m_fd;  // shared with the registered handler
    EventRegistrar* m_events{nullptr};
};

}  // namespace rv
