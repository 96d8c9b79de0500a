#include "vmm/event_loop.h"

#include <array>

#include "base/log.h"

namespace rv {

namespace {
Result<void> watch(int epoll, int fd, uint32_t events, uint64_t token) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = token;
    if (::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev) < 0) return errno_error("epoll_ctl add");
    return {};
}
}  // namespace

EventLoop::EventLoop(Fd epoll, EventFd stop, EventFd posted)
    : m_epoll(std::move(epoll)), m_stop(std::move(stop)), m_posted(std::move(posted)) {}

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
    int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) return errno_error("epoll_create1");
    Fd epoll(fd);
    EventFd stop = RV_TRY(EventFd::create(EFD_NONBLOCK));
    EventFd posted = RV_TRY(EventFd::create(EFD_NONBLOCK));
    std::unique_ptr<EventLoop> loop(
        new EventLoop(std::move(epoll), std::move(stop), std::move(posted)));
    RV_TRY_VOID(watch(loop->m_epoll.get(), loop->m_stop.fd(), EPOLLIN, kStopToken));
    RV_TRY_VOID(watch(loop->m_epoll.get(), loop->m_posted.fd(), EPOLLIN, kPostToken));
    return loop;
}

Result<void> EventLoop::add(int fd, uint32_t events, Handler handler) {
    return add_to(Set::Control, fd, events, std::move(handler));
}

void EventLoop::remove(int fd) { remove_from(Set::Control, fd); }

Result<void> EventLoop::add_to(Set set, int fd, uint32_t events, Handler handler) {
    std::lock_guard lock(m_lock);
    auto& fds = set == Set::Control ? m_control_fds : m_device_fds;
    if (fds.contains(fd)) return make_error("event loop: fd {} is already registered", fd);
    const uint64_t token = m_next_token++;
    auto h = std::make_shared<Handler>(std::move(handler));
    // Register the handler before epoll can report the fd. A device fd
    // added while paused is watched from the resume on.
    m_by_token[token] = Target{set, std::move(h)};
    if (watched(set)) {
        if (auto r = watch(m_epoll.get(), fd, events, token); !r) {
            m_by_token.erase(token);
            return r;
        }
    }
    fds[fd] = Registration{token, events};
    return {};
}

void EventLoop::remove_from(Set set, int fd) {
    std::lock_guard lock(m_lock);
    auto& fds = set == Set::Control ? m_control_fds : m_device_fds;
    auto it = fds.find(fd);
    if (it == fds.end()) return;
    if (watched(set)) ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    m_by_token.erase(it->second.token);
    fds.erase(it);
}

void EventLoop::set_devices_paused(bool paused) {
    std::lock_guard lock(m_lock);
    if (paused == m_paused) return;
    // Every device fd leaves (or rejoins) the epoll. One that cannot (a
    // device closed it without removing it: a bug there) is logged and left
    // out; it must not keep the VM from pausing or resuming.
    for (const auto& [fd, reg] : m_device_fds) {
        Result<void> r;
        if (paused) {
            if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr) < 0)
                r = errno_error("epoll_ctl del");
        } else {
            r = watch(m_epoll.get(), fd, reg.events, reg.token);
        }
        if (!r)
            log::warn("event loop: device fd {} {}: {}", fd, paused ? "not paused" : "not resumed",
                      r.error().message());
    }
    m_paused = paused;
}

bool EventLoop::devices_paused() const {
    std::lock_guard lock(m_lock);
    return m_paused;
}

void EventLoop::post(std::function<void()> fn) {
    {
        std::lock_guard lock(m_lock);
        m_queue.push_back(std::move(fn));
    }
    (void)m_posted.write(1);
}

void EventLoop::run_posted() {
    (void)m_posted.read();
    for (;;) {
        std::function<void()> fn;
        {
            std::lock_guard lock(m_lock);
            if (m_queue.empty()) return;
            fn = std::move(m_queue.front());
            m_queue.pop_front();
        }
        fn();
    }
}

void EventLoop::stop() { (void)m_stop.write(1); }

void EventLoop::dispatch(const epoll_event& event) {
    std::shared_ptr<Handler> handler;  // kept alive if it removes itself
    {
        std::lock_guard lock(m_lock);
        auto it = m_by_token.find(event.data.u64);
        if (it == m_by_token.end()) return;  // removed by an earlier handler
        // Paused by an earlier handler of this batch: the fd is out of the
        // epoll now and reported again when it rejoins, if still ready.
        if (it->second.set == Set::Devices && m_paused) return;
        handler = it->second.handler;
    }
    (*handler)(event.events);
}

Result<void> EventLoop::run() {
    std::array<epoll_event, 64> events{};
    for (;;) {
        int n = ::epoll_wait(m_epoll.get(), events.data(), static_cast<int>(events.size()), -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("epoll_wait");
        }
        bool posted = false;
        for (int i = 0; i < n; ++i) {
            const epoll_event& ev = events[static_cast<size_t>(i)];
            switch (ev.data.u64) {
                case kStopToken:
                    (void)m_stop.read();
                    return {};
                case kPostToken:
                    posted = true;
                    break;
                default:
                    dispatch(ev);
            }
        }
        if (posted) run_posted();
    }
}

}  // namespace rv
