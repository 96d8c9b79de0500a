// How a device with a host-side backend (TAP fd, io_uring completion
// eventfd, ...) asks the VMM's event loop to call it when an fd is readable,
// without knowing about the loop. Thread-safe: devices register on
// activation, which happens on a vCPU thread.
#pragma once

#include <functional>

#include "base/error.h"

namespace rv {

class EventRegistrar {
public:
    virtual ~EventRegistrar() = default;
    // handler runs on the event-loop thread with the epoll events.
    virtual Result<void> add(int fd, uint32_t events, std::function<void(uint32_t)> handler) = 0;
    virtual void remove(int fd) = 0;
};

}  // namespace rv
