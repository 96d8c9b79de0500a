// The VMM's event loop: epoll over fds (console input, timers, later
// ioeventfds and backends), run on one thread. Other threads wake it with
// stop() or by writing to an fd it watches.
#pragma once

#include <sys/epoll.h>

#include <functional>
#include <map>
#include <memory>

#include "base/error.h"
#include "base/fd.h"

namespace rv {

class EventLoop {
public:
    using Handler = std::function<void(uint32_t events)>;

    static Result<std::unique_ptr<EventLoop>> create();

    Result<void> add(int fd, uint32_t events, Handler handler);
    void remove(int fd);

    // Runs until stop() is called (from any thread) or a handler fails.
    Result<void> run();
    // Thread-safe and async-signal-safe.
    void stop();

private:
    EventLoop(Fd epoll, EventFd stop) : m_epoll(std::move(epoll)), m_stop(std::move(stop)) {}

    Fd m_epoll;
    EventFd m_stop;
    std::map<int, std::shared_ptr<Handler>> m_handlers;
    bool m_running{false};
};

}  // namespace rv
