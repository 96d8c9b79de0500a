// Helpers for block backend tests: temporary image files and a loop that
// waits on the completion fd and collects results by tag.
#pragma once

#include <fcntl.h>
#include <poll.h>
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

// Waits (on the completion fd, as the event loop would) until `count`
// completions have arrived; returns tag -> result. Throws on a timeout.
inline std::map<uint64_t, int64_t> wait_completions(BlockBackend& backend, size_t count,
                                                    std::vector<uint64_t>* order = nullptr) {
    std::map<uint64_t, int64_t> results;
    while (results.size() < count) {
        pollfd p{backend.completion_fd(), POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) throw std::runtime_error("no completion within 5 s");
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
