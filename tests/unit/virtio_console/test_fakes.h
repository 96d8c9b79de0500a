// Test doubles for virtio devices that are not in tests/support yet: an
// Interrupt that records what the device signalled, and an EventRegistrar
// that stands in for the event loop (tests run ready handlers by hand).
#pragma once

#include <poll.h>

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "devices/event_registrar.h"
#include "devices/virtio/virtio_device.h"

namespace rv::test {

class RecordingInterrupt final : public virtio::Interrupt {
  public:
    void signal_used_queue(uint16_t queue_index) override {
        std::lock_guard lock(m_mutex);
        m_used.push_back(queue_index);
    }
    void signal_config_change() override {
        std::lock_guard lock(m_mutex);
        ++m_config_changes;
    }
    size_t used_count(uint16_t queue_index) const {
        std::lock_guard lock(m_mutex);
        size_t n = 0;
        for (uint16_t q : m_used) n += q == queue_index;
        return n;
    }
    size_t config_changes() const {
        std::lock_guard lock(m_mutex);
        return m_config_changes;
    }

  private:
    mutable std::mutex m_mutex;
    std::vector<uint16_t> m_used;
    size_t m_config_changes{0};
};

class FakeEventRegistrar final : public EventRegistrar {
  public:
    Result<void> add(int fd, uint32_t, std::function<void(uint32_t)> handler) override {
        std::lock_guard lock(m_mutex);
        if (m_handlers.contains(fd)) return make_error("fd {} registered twice", fd);
        m_handlers[fd] = std::move(handler);
        return {};
    }
    void remove(int fd) override {
        std::lock_guard lock(m_mutex);
        m_handlers.erase(fd);
    }
    size_t registered() const {
        std::lock_guard lock(m_mutex);
        return m_handlers.size();
    }
    bool registered(int fd) const {
        std::lock_guard lock(m_mutex);
        return m_handlers.contains(fd);
    }
    // Runs fd's handler as if it were readable (a test firing a timer it
    // took over); false if fd is not registered.
    bool fire(int fd) {
        std::function<void(uint32_t)> handler;
        {
            std::lock_guard lock(m_mutex);
            auto it = m_handlers.find(fd);
            if (it == m_handlers.end()) return false;
            handler = it->second;
        }
        handler(POLLIN);
        return true;
    }
    // The test drives fd itself (a limiter timer it took over, see
    // support/limiter_timer.h): run_ready leaves it alone, so a slow run
    // cannot see the real timer expire and run its handler on its own.
    void hold(int fd) {
        std::lock_guard lock(m_mutex);
        m_held.insert(fd);
    }
    // One event-loop iteration: runs the handler of every readable fd that
    // is not held. Returns how many ran.
    size_t run_ready() {
        std::vector<std::pair<int, std::function<void(uint32_t)>>> ready;
        {
            std::lock_guard lock(m_mutex);
            for (auto& [fd, handler] : m_handlers) {
                if (m_held.contains(fd)) continue;
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) ready.emplace_back(fd, handler);
            }
        }
        for (auto& [fd, handler] : ready) handler(POLLIN);
        return ready.size();
    }

  private:
    mutable std::mutex m_mutex;
    std::map<int, std::function<void(uint32_t)>> m_handlers;
    std::set<int> m_held;
};

}  // namespace rv::test
