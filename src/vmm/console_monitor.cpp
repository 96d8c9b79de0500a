#include "vmm/console_monitor.h"

namespace rv {

namespace {
constexpr std::string_view kPanicBanner = "Kernel panic - not syncing";
constexpr std::string_view kPanicEnd = "---[ end Kernel panic";
constexpr size_t kMaxLine = 512;  // longer lines are cut: we only look for banners
}  // namespace

ConsoleMonitor::Event ConsoleMonitor::feed(std::span<const uint8_t> bytes) {
    Event result = Event::None;
    for (uint8_t b : bytes) {
        if (b == '\n' || b == '\r') {
            Event e = end_line();
            if (e > result) result = e;
        } else if (m_line.size() < kMaxLine) {
            m_line.push_back(static_cast<char>(b));
        }
    }
    return result;
}

ConsoleMonitor::Event ConsoleMonitor::end_line() {
    Event e = Event::None;
    if (auto pos = m_line.find(kPanicEnd); pos != std::string::npos) {
        if (!m_panic_line) m_panic_line = m_line.substr(pos + 5);
        e = Event::PanicEnded;
    } else if (auto at = m_line.find(kPanicBanner); at != std::string::npos) {
        if (!m_panic_line) m_panic_line = m_line.substr(at);
        e = Event::PanicStarted;
    }
    m_line.clear();
    return e;
}

}  // namespace rv
