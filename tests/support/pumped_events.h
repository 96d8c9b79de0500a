// Stands in for the event loop in device tests: serves every registered fd
// that is readable when pump() runs (e.g. a transport's queue kick eventfds).
#pragma once

#include <poll.h>
#include <sys/epoll.h>

#include <functional>
#include <map>

#include "devices/event_registrar.h"

namespace rv::test {

struct PumpedEvents final : EventRegistrar {
    Result<void> add(int fd, uint32_t, std::function<void(uint32_t)> handler) override {
        if (handlers.contains(fd)) return make_error("fd {} registered twice", fd);
        handlers[fd] = std::move(handler);
        return {};
    }
    void remove(int fd) override { handlers.erase(fd); }
    void pump() {
        for (auto& [fd, handler] : handlers) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 0) == 1) handler(EPOLLIN);
        }
    }
    std::map<int, std::function<void(uint32_t)>> handlers;
};

}  // namespace rv::test
