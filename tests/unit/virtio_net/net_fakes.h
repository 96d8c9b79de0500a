// Test doubles for virtio-net: the shared socketpair NetBackend, an Interrupt that records
// what the device signalled, and an EventRegistrar that remembers the epoll
// events asked for and runs handlers level-triggered, like the event loop.
// Also used by fuzz/virtio_net_fuzz.cpp.
#pragma once

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "backends/net/net_backend.h"
#include "base/fd.h"
#include "devices/event_registrar.h"
#include "devices/virtio/virtio_device.h"
#include "support/fake_net_backend.h"

namespace rv::test {

// The backend double is the shared one (support/fake_net_backend.h).
using FakeNetState = FakeNetPeer;

class NetRecordingInterrupt final : public virtio::Interrupt {
  public:
    void signal_used_queue(uint16_t queue_index) override { m_used.push_back(queue_index); }
    void signal_config_change() override { ++m_config_changes; }
    size_t used_count(uint16_t queue_index) const {
        size_t n = 0;
        for (uint16_t q : m_used) n += q == queue_index;
        return n;
    }
    size_t config_changes() const { return m_config_changes; }

  private:
    std::vector<uint16_t> m_used;
    size_t m_config_changes{0};
};

class NetFakeRegistrar final : public EventRegistrar {
  public:
    Result<void> add(int fd, uint32_t events, std::function<void(uint32_t)> handler) override {
        if (m_entries.contains(fd)) return make_error("fd {} registered twice", fd);
        m_entries[fd] = Entry{events, std::move(handler)};
        ++m_adds;
        return {};
    }
    void remove(int fd) override { m_entries.erase(fd); }

    // Registered epoll events for fd, 0 if not registered.
    uint32_t events(int fd) const {
        auto it = m_entries.find(fd);
        return it == m_entries.end() ? 0 : it->second.events;
    }
    size_t adds() const { return m_adds; }
    // One level-triggered event-loop pass: polls every fd for the events it
    // registered and runs the handler with what is ready. Returns how many ran.
    size_t run_ready() {
        std::vector<std::pair<std::function<void(uint32_t)>, uint32_t>> ready;
        for (auto& [fd, e] : m_entries) {
            short want = 0;
            if (e.events & EPOLLIN) want |= POLLIN;
            if (e.events & EPOLLOUT) want |= POLLOUT;
            pollfd p{fd, want, 0};
            if (::poll(&p, 1, 0) != 1) continue;
            uint32_t got = 0;
            if (p.revents & POLLIN) got |= EPOLLIN;
            if (p.revents & POLLOUT) got |= EPOLLOUT;
            if (p.revents & POLLHUP) got |= EPOLLHUP;
            if (p.revents & POLLERR) got |= EPOLLERR;
            if (got) ready.emplace_back(e.handler, got);
        }
        for (auto& [handler, got] : ready) handler(got);
        return ready.size();
    }
    // Runs passes until nothing is ready (bounded, so a spinning device fails
    // the test instead of hanging it). Returns the number of passes that ran.
    size_t run_until_idle(size_t max_passes = 100) {
        size_t passes = 0;
        while (passes < max_passes && run_ready() > 0) ++passes;
        return passes;
    }

  private:
    struct Entry {
        uint32_t events;
        std::function<void(uint32_t)> handler;
    };
    std::map<int, Entry> m_entries;
    size_t m_adds{0};
};

}  // namespace rv::test
