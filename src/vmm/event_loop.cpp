#include "vmm/event_loop.h"

#include <array>

namespace rv {

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
    int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) return errno_error("epoll_create1");
    Fd epoll(fd);
    EventFd stop = RV_TRY(EventFd::create(EFD_NONBLOCK));
    std::unique_ptr<EventLoop> loop(new EventLoop(std::move(epoll), std::move(stop)));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = loop->m_stop.fd();
    if (::epoll_ctl(loop->m_epoll.get(), EPOLL_CTL_ADD, loop->m_stop.fd(), &ev) < 0)
        return errno_error("epoll_ctl");
    return loop;
}

Result<void> EventLoop::add(int fd, uint32_t events, Handler handler) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    std::lock_guard lock(m_lock);
    // Register the handler before epoll can report the fd.
    m_handlers[fd] = std::make_shared<Handler>(std::move(handler));
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0) {
        m_handlers.erase(fd);
        return errno_error("epoll_ctl add");
    }
    return {};
}

void EventLoop::remove(int fd) {
    std::lock_guard lock(m_lock);
    ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    m_handlers.erase(fd);
}

void EventLoop::stop() { (void)m_stop.write(1); }

Result<void> EventLoop::run() {
    std::array<epoll_event, 32> events{};
    for (;;) {
        int n = ::epoll_wait(m_epoll.get(), events.data(), static_cast<int>(events.size()), -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            int fd = events[static_cast<size_t>(i)].data.fd;
            if (fd == m_stop.fd()) {
                (void)m_stop.read();
                return {};
            }
            std::shared_ptr<Handler> handler;  // kept alive if it removes itself
            {
                std::lock_guard lock(m_lock);
                auto it = m_handlers.find(fd);
                if (it == m_handlers.end()) continue;  // removed by an earlier handler
                handler = it->second;
            }
            (*handler)(events[static_cast<size_t>(i)].events);
        }
    }
}

}  // namespace rv
