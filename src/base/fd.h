// Owning file descriptor and small fd-based primitives (eventfd, epoll).
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "base/error.h"

namespace rv {

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : m_fd(fd) {}
    Fd(Fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            m_fd = std::exchange(other.m_fd, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return m_fd; }
    bool valid() const { return m_fd >= 0; }
    int release() { return std::exchange(m_fd, -1); }
    void reset() {
        if (m_fd >= 0) ::close(m_fd);
        m_fd = -1;
    }

    static Result<Fd> open(const std::string& path, int flags, int mode = 0);

private:
    int m_fd{-1};
};

// Reads the whole file into memory.
Result<std::string> read_file(const std::string& path);
// Writes all of `bytes` at `offset` (pwrite until done; EINTR retried).
Result<void> write_all_at(int fd, std::span<const uint8_t> bytes, uint64_t offset);

class EventFd {
public:
    static Result<EventFd> create(int flags = 0);
    int fd() const { return m_fd.get(); }
    Result<void> write(uint64_t value = 1) const;
    Result<uint64_t> read() const;

private:
    explicit EventFd(Fd fd) : m_fd(std::move(fd)) {}
    Fd m_fd;
};

}  // namespace rv
