// The VMM's event loop: epoll over fds (console input, timers, later
// ioeventfds and backends), run on one thread. Other threads wake it with
// stop() or by writing to an fd it watches.
#pragma once

#include <sys/epoll.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "base/error.h"
#include "base/fd.h"
#include "devices/event_registrar.h"

namespace rv {

// Thread-safe: devices add and remove fds from vCPU threads (activation,
// reset) and from inside handlers. Handlers run without the lock held.
class EventLoop final : public EventRegistrar {
public:
    using Handler = std::function<void(uint32_t events)>;

    static Result<std::unique_ptr<EventLoop>> create();

    Result<void> add(int fd, uint32_t events, Handler handler) override;
    void remove(int fd) override;

    // Runs until stop() is called (from any thread) or a handler fails.
    Result<void> run();
    // Thread-safe and async-signal-safe.
    void stop();

private:
    EventLoop(Fd epoll, EventFd stop) : m_epoll(std::move(epoll)), m_stop(std::move(stop)) {}

    Fd m_epoll;
    EventFd m_stop;
    std::mutex m_lock;  // guards m_handlers
    std::map<int, std::shared_ptr<Handler>> m_handlers;
};

}  // namespace rv
