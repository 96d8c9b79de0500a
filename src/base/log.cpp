#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

namespace rv::log {

namespace {
std::atomic<Level> g_level{Level::Warn};

std::mutex g_sink_lock;  // guards g_sink (the pointer, not calls through it)
std::shared_ptr<const Sink> g_sink;

void write_stderr(Level l, std::string_view text) {
    static constexpr const char* names[] = {"debug", "info", "warn", "error", ""};
    // One write(2) per line so lines from different threads do not interleave.
    // "\r\n": the terminal may be in raw mode while the guest runs.
    std::string line = fmt::format("ringvisor: {}: {}\r\n", names[static_cast<int>(l)], text);
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}
}  // namespace

void set_level(Level l) { g_level.store(l, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

void set_sink(Sink sink) {
    auto next = sink ? std::make_shared<const Sink>(std::move(sink)) : nullptr;
    std::lock_guard lock(g_sink_lock);
    g_sink = std::move(next);
}

void write(Level l, std::string_view text) {
    std::shared_ptr<const Sink> sink;
    {
        // A copy, so a sink replaced meanwhile stays alive for this call and
        // the call itself runs unlocked.
        std::lock_guard lock(g_sink_lock);
        sink = g_sink;
    }
    if (sink)
        (*sink)(l, text);
    else
        write_stderr(l, text);
}

RateLimit::RateLimit(uint32_t burst, std::chrono::steady_clock::duration interval, Clock clock)
    : m_burst(burst),
      m_interval(interval),
      m_clock(clock ? std::move(clock) : Clock{[] { return std::chrono::steady_clock::now(); }}) {}

RateLimit::Verdict RateLimit::admit() {
    auto now = m_clock();
    std::lock_guard lock(m_lock);
    ++m_events;
    Verdict v;
    if (m_events <= m_burst) {
        v.log = true;
        v.last_of_burst = m_events == m_burst;
    } else if (now - m_last_logged >= m_interval) {
        v.log = true;
        v.suppressed = m_suppressed;
    }
    if (v.log) {
        m_last_logged = now;
        m_suppressed = 0;
    } else {
        ++m_suppressed;
        ++m_suppressed_total;
    }
    return v;
}

uint64_t RateLimit::events() const {
    std::lock_guard lock(m_lock);
    return m_events;
}

uint64_t RateLimit::suppressed_total() const {
    std::lock_guard lock(m_lock);
    return m_suppressed_total;
}

std::string rate_limit_note(const RateLimit& limit, const RateLimit::Verdict& v) {
    if (v.last_of_burst) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(limit.interval()).count();
        return ms % 1000
                   ? fmt::format(" (repeats logged at most once per {} ms from now on)", ms)
                   : fmt::format(" (repeats logged at most once per {} s from now on)", ms / 1000);
    }
    if (v.suppressed > 0) return fmt::format(" ({} more like this not logged)", v.suppressed);
    return {};
}

}  // namespace rv::log
