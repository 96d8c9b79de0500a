#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace rv::log {

namespace {
std::atomic<Level> g_level{Level::Warn};
}

void set_level(Level l) { g_level.store(l, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

void write(Level l, std::string_view text) {
    static constexpr const char* names[] = {"debug", "info", "warn", "error", ""};
    // One write(2) per line so lines from different threads do not interleave.
    // "\r\n": the terminal may be in raw mode while the guest runs.
    std::string line = fmt::format("ringvisor: {}: {}\r\n", names[static_cast<int>(l)], text);
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace rv::log
