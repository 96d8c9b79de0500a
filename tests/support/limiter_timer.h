// Driving a device's rate-limiter timer (a LimiterTimer's timerfd) from a
// test whose limiter runs on a ManualNsClock: the kernel timer counts real
// time, the limiter manual time, so the test takes the timer over. It reads
// how long the timer had left and disarms it (so a slow test run cannot see
// it fire on its own), then advances the manual clock and runs the fd's
// registered handler itself: that is "the timer fired".
#pragma once

#include <poll.h>
#include <sys/timerfd.h>

#include <cstdint>
#include <optional>

namespace rv::test {

// Time left on an armed timerfd; nullopt if disarmed, expired or not a timerfd.
inline std::optional<uint64_t> armed_timer_ns(int fd) {
    itimerspec spec{};
    if (fd < 0 || ::timerfd_gettime(fd, &spec) != 0) return std::nullopt;
    const uint64_t ns =
        uint64_t(spec.it_value.tv_sec) * 1'000'000'000ull + uint64_t(spec.it_value.tv_nsec);
    if (ns == 0) return std::nullopt;
    return ns;
}

inline bool fd_readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return fd >= 0 && ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

// Whether the timer was armed (or has already expired unread), with the
// time it had left (0 if expired); disarms it either way.
inline std::optional<uint64_t> take_armed_timer(int fd) {
    std::optional<uint64_t> left = armed_timer_ns(fd);
    if (!left && fd_readable(fd)) left = 0;
    if (fd >= 0) {
        itimerspec off{};
        (void)::timerfd_settime(fd, 0, &off, nullptr);
    }
    return left;
}

}  // namespace rv::test
