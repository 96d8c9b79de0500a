// Helpers for block backend tests: temporary image files and a loop that
// waits on the completion fd and collects results by tag.
#pragma once

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "backends/block/block_backend.h"

namespace rv::test {

// A file under `dir` that is removed again at the end of the test.
class TempImage {
  public:
    explicit TempImage(uint64_t size, const std::string& dir = "/tmp") {
        m_path = dir + "/rv_block_XXXXXX";
        int fd = ::mkstemp(m_path.data());
        if (fd < 0) throw std::runtime_error("mkstemp failed in " + dir);
        if (::ftruncate(fd, static_cast<off_t>(size)) < 0) throw std::runtime_error("ftruncate");
        ::close(fd);
    }
    ~TempImage() { ::unlink(m_path.c_str()); }
    const std::string& path() const { return m_path; }

    // Reads/writes the file directly, bypassing the backend.
    std::vector<uint8_t> read(uint64_t offset, size_t len) const {
        std::vector<uint8_t> out(len);
        int fd = ::open(m_path.c_str(), O_RDONLY);
        ssize_t n = ::pread(fd, out.data(), len, static_cast<off_t>(offset));
        ::close(fd);
        if (n != static_cast<ssize_t>(len)) throw std::runtime_error("pread");
        return out;
    }
    void write(uint64_t offset, const std::vector<uint8_t>& data) const {
        int fd = ::open(m_path.c_str(), O_WRONLY);
        ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
        ::close(fd);
        if (n != static_cast<ssize_t>(data.size())) throw std::runtime_error("pwrite");
    }

  private:
    std::string m_path;
};

inline std::vector<uint8_t> pattern(size_t len, uint8_t seed) {
    std::vector<uint8_t> v(len);
    for (size_t i = 0; i < len; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
    return v;
}

// The offset where two byte strings first differ, or npos if they are equal:
// a short failure message for megabyte-sized comparisons.
inline size_t first_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    size_t n = std::min(a.size(), b.size());
    for (size_t i = 0; i < n; ++i)
        if (a[i] != b[i]) return i;
    return a.size() == b.size() ? std::string::npos : n;
}

// The backend's completion fd in an epoll of its own, registered as the
// event loop registers it (edge-triggered; the eventfd is never read).
class CompletionWatch {
  public:
    explicit CompletionWatch(const BlockBackend& backend) : m_epoll(::epoll_create1(EPOLL_CLOEXEC)) {
        epoll_event ev{};
        ev.events = BlockBackend::kCompletionEvents;
        if (m_epoll < 0 || ::epoll_ctl(m_epoll, EPOLL_CTL_ADD, backend.completion_fd(), &ev) < 0)
            throw std::runtime_error("cannot watch the completion fd");
    }
    ~CompletionWatch() { ::close(m_epoll); }
    CompletionWatch(const CompletionWatch&) = delete;
    CompletionWatch& operator=(const CompletionWatch&) = delete;
    // Whether the backend signalled since the last call (waiting up to
    // timeout_ms). io_uring posts a completion from task work, which
    // interrupts the wait (EINTR) and then signals: wait again, as the loop does.
    bool signalled(int timeout_ms) {
        epoll_event ev;
        int n;
        do n = ::epoll_wait(m_epoll, &ev, 1, timeout_ms);
        while (n < 0 && errno == EINTR);
        return n == 1;
    }

  private:
    int m_epoll;
};

// Waits (on the completion fd, as the event loop would) until `count`
// completions have arrived; returns tag -> result. Throws on a timeout.
inline std::map<uint64_t, int64_t> wait_completions(BlockBackend& backend, size_t count,
                                                    std::vector<uint64_t>* order = nullptr) {
    std::map<uint64_t, int64_t> results;
    CompletionWatch watch(backend);
    // Whatever completed before the watch began: reaped once up front.
    bool first = true;
    while (results.size() < count) {
        if (!first && !watch.signalled(5000)) throw std::runtime_error("no completion within 5 s");
        first = false;
        backend.process_completions([&](uint64_t tag, int64_t result) {
            if (!results.emplace(tag, result).second)
                throw std::runtime_error("tag completed twice");
            if (order) order->push_back(tag);
        });
    }
    return results;
}

inline int64_t run_one(BlockBackend& backend, uint64_t tag) {
    return wait_completions(backend, 1).at(tag);
}

}  // namespace rv::test
