// The VMM's event loop: one epoll over fds, run on one thread. Two sets:
//  - control: console, signals, the command queue (post()), the API's
//    replies; always served;
//  - devices (devices()): ioeventfds, backends, device timers; not served
//    while the VM is paused (set_devices_paused), so no device does any work
//    then: pausing takes their fds out of the epoll, resuming puts them back,
//    and what became ready meanwhile is reported then.
// Both sets share one epoll, so a wake-up costs one epoll_wait (a nested
// epoll for the devices cost a second one per wake-up, on the I/O path).
// Edge-triggered fds (EPOLLET) are fine in either set: an eventfd that is
// only ever signalled need not be read (virtio kicks, block completions),
// and re-adding an fd on resume reports it if it is ready.
#pragma once

#include <sys/epoll.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "base/error.h"
#include "base/fd.h"
#include "devices/event_registrar.h"

namespace rv {

// Thread-safe: devices add and remove fds from vCPU threads (activation,
// reset) and from inside handlers. Handlers run without the lock held. An fd
// removed by one handler is not reported to its (or a new fd's) handler later
// in the same batch: registrations are told apart by a sequence number.
class EventLoop final : public EventRegistrar {
public:
    using Handler = std::function<void(uint32_t events)>;

    static Result<std::unique_ptr<EventLoop>> create();

    // The control set.
    Result<void> add(int fd, uint32_t events, Handler handler) override;
    void remove(int fd) override;
    // The device set (what devices get as their EventRegistrar).
    EventRegistrar& devices() { return m_devices; }

    // Device fds are not served while paused. Thread-safe. Cannot fail: a
    // device fd that cannot leave or rejoin the epoll is logged and skipped.
    void set_devices_paused(bool paused);
    bool devices_paused() const;

    // Runs fn on the loop thread, after the handlers of the current batch;
    // functions run in the order they were posted. Thread-safe.
    void post(std::function<void()> fn);

    // Runs until stop() is called (from any thread) or a handler fails.
    Result<void> run();
    // Runs what post() has queued, now, on the calling thread (after run()
    // has returned: nothing posted stays unanswered).
    void run_posted();
    // Thread-safe and async-signal-safe.
    void stop();

private:
    enum class Set { Control, Devices };
    class DeviceRegistrar final : public EventRegistrar {
    public:
        explicit DeviceRegistrar(EventLoop& loop) : m_loop(loop) {}
        Result<void> add(int fd, uint32_t events, std::function<void(uint32_t)> handler) override {
            return m_loop.add_to(Set::Devices, fd, events, std::move(handler));
        }
        void remove(int fd) override { m_loop.remove_from(Set::Devices, fd); }

    private:
        EventLoop& m_loop;
    };
    // An fd's registration; its handler is in m_by_token under the token.
    struct Registration {
        uint64_t token;
        uint32_t events;  // to watch it again on resume
    };
    struct Target {
        Set set;
        std::shared_ptr<Handler> handler;
    };
    // Tokens below kFirstToken are the loop's own fds.
    static constexpr uint64_t kStopToken = 1, kPostToken = 2, kFirstToken = 16;

    EventLoop(Fd epoll, EventFd stop, EventFd posted);
    Result<void> add_to(Set set, int fd, uint32_t events, Handler handler);
    void remove_from(Set set, int fd);
    // Whether the set's fds are in the epoll now (a device fd is not while paused).
    bool watched(Set set) const { return set == Set::Control || !m_paused; }
    // Runs the handler of one event epoll reported.
    void dispatch(const epoll_event& event);

    Fd m_epoll;
    EventFd m_stop;
    EventFd m_posted;
    DeviceRegistrar m_devices{*this};
    mutable std::mutex m_lock;  // guards everything below
    std::map<int, Registration> m_control_fds;
    std::map<int, Registration> m_device_fds;
    std::map<uint64_t, Target> m_by_token;
    uint64_t m_next_token{kFirstToken};
    bool m_paused{false};
    std::deque<std::function<void()>> m_queue;
};

}  // namespace rv
