// Stands in for the event loop in device tests: the fds a device registers
// go into a real epoll with the events it asked for, so an edge-triggered
// registration (EPOLLET: virtio kicks, block completions, whose eventfds are
// never read) is reported once per signal, as in the VMM. Tests may also
// fire a handler themselves (`handlers`).
#pragma once

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <functional>
#include <map>
#include <vector>

#include "devices/event_registrar.h"

namespace rv::test {

class EpollRegistrar final : public EventRegistrar {
  public:
    EpollRegistrar() : m_epoll(::epoll_create1(EPOLL_CLOEXEC)) { EXPECT_GE(m_epoll, 0); }
    ~EpollRegistrar() override { ::close(m_epoll); }
    EpollRegistrar(const EpollRegistrar&) = delete;
    EpollRegistrar& operator=(const EpollRegistrar&) = delete;

    Result<void> add(int fd, uint32_t events, std::function<void(uint32_t)> handler) override {
        if (handlers.contains(fd)) return make_error("fd {} registered twice", fd);
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        if (::epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &ev) < 0) return errno_error("epoll_ctl add");
        handlers[fd] = std::move(handler);
        registered_events[fd] = events;
        return {};
    }
    void remove(int fd) override {
        if (handlers.erase(fd) == 0) return;
        ::epoll_ctl(m_epoll, EPOLL_CTL_DEL, fd, nullptr);
        registered_events.erase(fd);
        removed.push_back(fd);
    }

    // One event-loop turn: waits up to `timeout_ms` for a reported fd and
    // runs the handlers of what epoll reported; returns how many ran.
    int turn(int timeout_ms = 0) {
        std::array<epoll_event, 64> events{};
        int n;
        do n = ::epoll_wait(m_epoll, events.data(), static_cast<int>(events.size()), timeout_ms);
        while (n < 0 && errno == EINTR);  // io_uring's task work interrupts waits
        int ran = 0;
        for (int i = 0; i < n; ++i) {
            auto it = handlers.find(events[static_cast<size_t>(i)].data.fd);
            if (it == handlers.end()) continue;  // removed by an earlier handler
            auto handler = it->second;           // a handler may change the registrations
            handler(events[static_cast<size_t>(i)].events);
            ++ran;
        }
        return ran;
    }
    // Turns until nothing is reported (waiting up to `timeout_ms` for the
    // first); returns how many handler calls ran.
    int pump(int timeout_ms = 0) {
        int calls = 0;
        for (int round = 0; round < 100000; ++round) {
            int ran = turn(round == 0 ? timeout_ms : 0);
            if (ran == 0) break;
            calls += ran;
        }
        return calls;
    }

    std::map<int, std::function<void(uint32_t)>> handlers;
    std::map<int, uint32_t> registered_events;
    std::vector<int> removed;

  private:
    int m_epoll;
};

}  // namespace rv::test
