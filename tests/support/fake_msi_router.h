// An MsiRouter that records routes and triggers instead of talking to KVM,
// so tests can assert which message a vector was routed to and what fired.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "devices/pci/msi.h"

namespace rv::test {

class FakeMsiRouter final : public MsiRouter {
  public:
    explicit FakeMsiRouter(uint32_t first_gsi = 24, uint32_t capacity = 1024)
        : m_next(first_gsi), m_end(first_gsi + capacity) {}

    Result<uint32_t> allocate_gsi() override {
        std::lock_guard lock(m_mutex);
        if (m_next >= m_end) return make_error("fake msi router: out of GSIs");
        ++m_allocations;
        return m_next++;
    }
    Result<void> set_route(uint32_t gsi, MsiMessage message) override {
        std::lock_guard lock(m_mutex);
        m_routes[gsi] = message;
        ++m_route_updates;
        return {};
    }
    void trigger(uint32_t gsi) override {
        std::lock_guard lock(m_mutex);
        m_triggered.push_back(gsi);
        auto it = m_routes.find(gsi);
        m_delivered.push_back(it == m_routes.end() ? MsiMessage{} : it->second);
    }

    // The message gsi points at; a default message if never routed.
    MsiMessage route(uint32_t gsi) const {
        std::lock_guard lock(m_mutex);
        auto it = m_routes.find(gsi);
        return it == m_routes.end() ? MsiMessage{} : it->second;
    }
    bool routed(uint32_t gsi) const {
        std::lock_guard lock(m_mutex);
        return m_routes.count(gsi) != 0;
    }
    // Messages delivered so far, resolved through the route at trigger time
    // (what the guest's LAPIC would have received).
    std::vector<uint32_t> triggered() const {
        std::lock_guard lock(m_mutex);
        return m_triggered;
    }
    std::vector<MsiMessage> delivered() const {
        std::lock_guard lock(m_mutex);
        return m_delivered;
    }
    void clear_triggered() {
        std::lock_guard lock(m_mutex);
        m_triggered.clear();
        m_delivered.clear();
    }
    size_t allocations() const {
        std::lock_guard lock(m_mutex);
        return m_allocations;
    }
    size_t route_updates() const {
        std::lock_guard lock(m_mutex);
        return m_route_updates;
    }

  private:
    mutable std::mutex m_mutex;
    uint32_t m_next;
    uint32_t m_end;
    size_t m_allocations{0};
    size_t m_route_updates{0};
    std::map<uint32_t, MsiMessage> m_routes;
    std::vector<uint32_t> m_triggered;
    std::vector<MsiMessage> m_delivered;
};

}  // namespace rv::test
