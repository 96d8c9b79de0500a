// A NetBackend over a SOCK_SEQPACKET socketpair (packet boundaries kept, as
// with a tap) and an EventRegistrar that polls registered fds the way the
// level-triggered event loop would. For NIC device tests and fuzzers that
// must not depend on a virtio device; the virtio-net tests use it too.
#pragma once

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "backends/net/net_backend.h"
#include "base/fd.h"
#include "devices/event_registrar.h"

namespace rv::test {

// The network side of the fake, kept by the test after the device owns the backend.
struct FakeNetPeer {
    Fd device_end;
    Fd peer;
    int vnet_hdr_size{-1};
    std::vector<NetOffloads> offloads;
    // Called after each packet the device wrote / read, on the device's
    // thread and inside its lock: lets a test play a guest or a host that
    // keeps working meanwhile (refilling a ring, flooding the tap). Must not
    // call into the device.
    std::function<void()> on_device_write;
    std::function<void()> on_device_read;
    // A multi-queue tap's TUNSETQUEUE, as the device last set it, and any
    // packet I/O the device did on this queue while it was detached (a real
    // tap refuses it).
    bool attached{true};
    size_t io_while_detached{0};

    // Queues a packet (virtio-net header + frame) for the device to read.
    bool send(const std::vector<uint8_t>& packet) {
        return ::send(peer.get(), packet.data(), packet.size(), MSG_DONTWAIT) ==
               static_cast<ssize_t>(packet.size());
    }
    // The next packet the device wrote, if any.
    std::optional<std::vector<uint8_t>> receive() {
        // One scratch buffer rather than a fresh 128 KiB per call: tests that
        // move thousands of packets would spend their time in page faults.
        static thread_local std::vector<uint8_t> scratch(1 << 17);
        ssize_t n = ::recv(peer.get(), scratch.data(), scratch.size(), MSG_DONTWAIT);
        if (n < 0) return std::nullopt;
        return std::vector<uint8_t>(scratch.begin(), scratch.begin() + n);
    }
    std::vector<std::vector<uint8_t>> receive_all() {
        std::vector<std::vector<uint8_t>> out;
        while (auto p = receive()) out.push_back(std::move(*p));
        return out;
    }
    // Whether a packet is still queued for the device.
    bool device_readable() const {
        pollfd p{device_end.get(), POLLIN, 0};
        return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
    }
};

class FakeNetBackend final : public NetBackend {
  public:
    static std::pair<std::unique_ptr<FakeNetBackend>, std::shared_ptr<FakeNetPeer>> create() {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
            throw std::runtime_error("socketpair failed");
        auto peer = std::make_shared<FakeNetPeer>();
        peer->device_end = Fd(fds[0]);
        peer->peer = Fd(fds[1]);
        return {std::unique_ptr<FakeNetBackend>(new FakeNetBackend(peer)), peer};
    }

    // One backend per queue of a multi-queue NIC, each with its own peer.
    static std::pair<std::vector<std::unique_ptr<NetBackend>>,
                     std::vector<std::shared_ptr<FakeNetPeer>>>
    create_queues(size_t n) {
        std::pair<std::vector<std::unique_ptr<NetBackend>>,
                  std::vector<std::shared_ptr<FakeNetPeer>>>
            out;
        for (size_t i = 0; i < n; ++i) {
            auto [backend, peer] = create();
            out.first.push_back(std::move(backend));
            out.second.push_back(std::move(peer));
        }
        return out;
    }

    int fd() const override { return m_peer->device_end.get(); }
    Result<std::optional<size_t>> readv(std::span<const iovec> iov) override {
        if (!m_peer->attached) ++m_peer->io_while_detached;
        auto got = io(::readv(fd(), iov.data(), static_cast<int>(iov.size())), "readv");
        if (got && *got && m_peer->on_device_read) m_peer->on_device_read();
        return got;
    }
    Result<std::optional<size_t>> writev(std::span<const iovec> iov) override {
        if (!m_peer->attached) ++m_peer->io_while_detached;
        auto sent = io(::writev(fd(), iov.data(), static_cast<int>(iov.size())), "writev");
        if (sent && *sent && m_peer->on_device_write) m_peer->on_device_write();
        return sent;
    }
    Result<void> set_vnet_hdr_size(int size) override {
        m_peer->vnet_hdr_size = size;
        return {};
    }
    Result<void> set_offloads(const NetOffloads& offloads) override {
        m_peer->offloads.push_back(offloads);
        return {};
    }
    Result<void> set_queue_attached(bool attached) override {
        m_peer->attached = attached;
        return {};
    }

  private:
    explicit FakeNetBackend(std::shared_ptr<FakeNetPeer> peer) : m_peer(std::move(peer)) {}
    static Result<std::optional<size_t>> io(ssize_t n, std::string_view what) {
        if (n >= 0) return static_cast<size_t>(n);
        if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
        return errno_error(what);
    }
    std::shared_ptr<FakeNetPeer> m_peer;
};

class PollingRegistrar final : public EventRegistrar {
  public:
    Result<void> add(int fd, uint32_t events, std::function<void(uint32_t)> handler) override {
        if (m_entries.contains(fd)) return make_error("fd {} registered twice", fd);
        m_entries[fd] = Entry{events, std::move(handler)};
        ++m_adds;
        return {};
    }
    void remove(int fd) override { m_entries.erase(fd); }

    bool registered(int fd) const { return m_entries.contains(fd); }
    // Registered epoll events for fd, 0 if not registered.
    uint32_t events(int fd) const {
        auto it = m_entries.find(fd);
        return it == m_entries.end() ? 0 : it->second.events;
    }
    size_t adds() const { return m_adds; }
    // Runs fd's handler as if epoll had reported `events` (a test firing a
    // timer it took over); false if fd is not registered.
    bool fire(int fd, uint32_t events = EPOLLIN) {
        auto it = m_entries.find(fd);
        if (it == m_entries.end()) return false;
        auto handler = it->second.handler;  // the handler may change the registrations
        handler(events);
        return true;
    }
    // One pass: runs the handler of every registered fd that is ready.
    size_t run_ready() {
        std::vector<std::pair<std::function<void(uint32_t)>, uint32_t>> ready;
        for (auto& [fd, e] : m_entries) {
            pollfd p{fd, static_cast<short>((e.events & EPOLLIN) ? POLLIN : 0), 0};
            if (e.events & EPOLLOUT) p.events |= POLLOUT;
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
    // Passes until nothing is ready, bounded so a spinning device fails
    // instead of hanging. Returns the passes run.
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
