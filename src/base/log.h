// Minimal leveled logging to stderr. Guest-triggered problems are logged at
// warn level, never fatal.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace rv::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

void set_level(Level level);
Level level();
void write(Level level, std::string_view text);

// Where lines go instead of stderr (a test seam: tests count what a device
// logs). An empty sink restores stderr. Thread-safe; the sink is called
// without any lock of ours held, from whichever thread logs.
using Sink = std::function<void(Level level, std::string_view text)>;
void set_sink(Sink sink);

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Debug) write(Level::Debug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Info) write(Level::Info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Warn) write(Level::Warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    if (level() <= Level::Error) write(Level::Error, fmt::format(f, std::forward<Args>(args)...));
}

// For messages a guest can trigger at will: a bad register write logs on the
// vCPU thread, often under a device lock, and a driver may repeat it on every
// exit. The first `burst` events are logged; after that at most one per
// `interval`, saying how many were suppressed since the last one logged.
// Thread-safe. One per message and device, so a flood of one message does
// not hide the first of another.
class RateLimit {
  public:
    using Clock = std::function<std::chrono::steady_clock::time_point()>;
    static constexpr uint32_t kDefaultBurst = 5;
    static constexpr std::chrono::seconds kDefaultInterval{10};

    struct Verdict {
        bool log{false};
        uint64_t suppressed{0};  // events not logged since the previous logged one
        bool last_of_burst{false};
    };

    explicit RateLimit(uint32_t burst = kDefaultBurst,
                       std::chrono::steady_clock::duration interval = kDefaultInterval,
                       Clock clock = {});
    RateLimit(const RateLimit&) = delete;
    RateLimit& operator=(const RateLimit&) = delete;

    // Counts one event and says whether to log it.
    Verdict admit();
    // Events admitted / not logged so far.
    uint64_t events() const;
    uint64_t suppressed_total() const;
    std::chrono::steady_clock::duration interval() const { return m_interval; }

  private:
    const uint32_t m_burst;
    const std::chrono::steady_clock::duration m_interval;
    const Clock m_clock;
    mutable std::mutex m_lock;
    uint64_t m_events{0};
    uint64_t m_suppressed{0};  // since the last logged event
    uint64_t m_suppressed_total{0};
    std::chrono::steady_clock::time_point m_last_logged{};
};

// What warn_limited appends to a message the limiter let through.
std::string rate_limit_note(const RateLimit& limit, const RateLimit::Verdict& verdict);

// log::warn through a RateLimit; the arguments are formatted only for a
// message that is logged.
template <typename... Args>
void warn_limited(RateLimit& limit, fmt::format_string<Args...> f, Args&&... args) {
    if (level() > Level::Warn) return;
    RateLimit::Verdict v = limit.admit();
    if (!v.log) return;
    write(Level::Warn, fmt::format(f, std::forward<Args>(args)...) + rate_limit_note(limit, v));
}

}  // namespace rv::log
