// Captures what the code under test logs (log::set_sink) for the lifetime of
// the object, and restores stderr after. Lines from any thread are counted.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "base/log.h"

namespace rv::test {

class LogCapture {
  public:
    LogCapture() {
        log::set_sink([this](log::Level, std::string_view text) {
            std::lock_guard lock(m_lock);
            m_lines.emplace_back(text);
        });
    }
    ~LogCapture() { log::set_sink({}); }
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;

    std::vector<std::string> lines() const {
        std::lock_guard lock(m_lock);
        return m_lines;
    }
    size_t count() const {
        std::lock_guard lock(m_lock);
        return m_lines.size();
    }
    // Lines containing `needle`.
    size_t count(std::string_view needle) const {
        std::lock_guard lock(m_lock);
        size_t n = 0;
        for (const auto& l : m_lines) n += l.find(needle) != std::string::npos;
        return n;
    }
    void clear() {
        std::lock_guard lock(m_lock);
        m_lines.clear();
    }

  private:
    mutable std::mutex m_lock;
    std::vector<std::string> m_lines;
};

}  // namespace rv::test
