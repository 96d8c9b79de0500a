// An IrqLine that remembers what a device did to it, so tests can assert on
// the interrupt a guest would have seen (level now, edges, full history).
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

#include "devices/interrupt.h"

namespace rv::test {

class RecordingIrqLine final : public IrqLine {
  public:
    void set_level(bool high) override {
        std::lock_guard lock(m_mutex);
        if (high && !m_level) ++m_rising_edges;
        m_level = high;
        m_history.push_back(high);
    }

    bool level() const {
        std::lock_guard lock(m_mutex);
        return m_level;
    }
    // Low-to-high transitions: what an edge-triggered (ISA) interrupt
    // controller would have counted as interrupts.
    size_t rising_edges() const {
        std::lock_guard lock(m_mutex);
        return m_rising_edges;
    }
    // Every set_level call, in order (pulse() shows up as true, false).
    std::vector<bool> history() const {
        std::lock_guard lock(m_mutex);
        return m_history;
    }
    void clear_history() {
        std::lock_guard lock(m_mutex);
        m_history.clear();
        m_rising_edges = 0;
    }

  private:
    mutable std::mutex m_mutex;
    bool m_level{false};
    size_t m_rising_edges{0};
    std::vector<bool> m_history;
};

}  // namespace rv::test
