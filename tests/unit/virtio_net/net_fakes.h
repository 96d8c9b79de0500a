// Test doubles for virtio-net: a NetBackend over a SOCK_SEQPACKET socketpair
// (packet boundaries preserved, as with a tap), an Interrupt that records
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

namespace rv::test {

// What the test sees of the backend after the device owns it: the "network"
// end of the socketpair and the settings the device made.
struct FakeNetState {
    Fd device_end;  // the backend's fd (owned here so tests can fill it)
    Fd peer;        // the host network side
    int vnet_hdr_size{0};
    std::vector<NetOffloads> offloads;  // every set_offloads call, in order

    // Queues a packet (header + frame) for the guest.
    void send(const std::vector<uint8_t>& packet) {
        if (::send(peer.get(), packet.data(), packet.size(), MSG_DONTWAIT) !=
            static_cast<ssize_t>(packet.size()))
            throw std::runtime_error("FakeNetState: send failed");
    }
    // The next packet the guest sent, if any.
    std::optional<std::vector<uint8_t>> receive() {
        std::vector<uint8_t> buf(70000);
        ssize_t n = ::recv(peer.get(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0) return std::nullopt;
        buf.resize(static_cast<size_t>(n));
        return buf;
    }
    // Whether a packet is still waiting for the device to read it.
    bool device_readable() const {
        pollfd p{device_end.get(), POLLIN, 0};
        return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
    }
};

class FakeNetBackend final : public NetBackend {
  public:
    static std::pair<std::unique_ptr<FakeNetBackend>, std::shared_ptr<FakeNetState>> create() {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
            throw std::runtime_error("socketpair failed");
        auto state = std::make_shared<FakeNetState>();
        state->device_end = Fd(fds[0]);
        state->peer = Fd(fds[1]);
        return {std::unique_ptr<FakeNetBackend>(new FakeNetBackend(state)), state};
    }

    int fd() const override { return m_state->device_end.get(); }
    Result<std::optional<size_t>> readv(std::span<const iovec> iov) override {
        return io(::readv(fd(), iov.data(), static_cast<int>(iov.size())), "readv");
    }
    Result<std::optional<size_t>> writev(std::span<const iovec> iov) override {
        return io(::writev(fd(), iov.data(), static_cast<int>(iov.size())), "writev");
    }
    Result<void> set_vnet_hdr_size(int size) override {
        m_state->vnet_hdr_size = size;
        return {};
    }
    Result<void> set_offloads(const NetOffloads& offloads) override {
        m_state->offloads.push_back(offloads);
        return {};
    }

  private:
    explicit FakeNetBackend(std::shared_ptr<FakeNetState> state) : m_state(std::move(state)) {}
    static Result<std::optional<size_t>> io(ssize_t n, std::string_view what) {
        if (n >= 0) return static_cast<size_t>(n);
        if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
        return errno_error(what);
    }
    std::shared_ptr<FakeNetState> m_state;
};

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
