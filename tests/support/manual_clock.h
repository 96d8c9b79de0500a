// A wall clock that only moves when the test says so. Copies share one time
// value, so a copy handed to a device as its clock function follows set() and
// advance() on the original.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

namespace rv::test {

class ManualClock {
  public:
    explicit ManualClock(int64_t unix_seconds = 0)
        : m_now(std::make_shared<std::atomic<int64_t>>(unix_seconds)) {}

    int64_t operator()() const { return m_now->load(); }
    int64_t now() const { return m_now->load(); }
    void set(int64_t unix_seconds) { m_now->store(unix_seconds); }
    void advance(int64_t seconds) { m_now->fetch_add(seconds); }

    // The clock as the std::function devices take (shares state with *this).
    std::function<int64_t()> function() const { return *this; }

  private:
    std::shared_ptr<std::atomic<int64_t>> m_now;
};

// The same for a monotonic clock in nanoseconds (RateLimiter, e1000 ITR):
// starts at an arbitrary non-zero point, only moves forward when told.
class ManualNsClock {
  public:
    explicit ManualNsClock(uint64_t start_ns = 1'000'000'000)
        : m_now(std::make_shared<std::atomic<uint64_t>>(start_ns)) {}

    uint64_t operator()() const { return m_now->load(); }
    uint64_t now() const { return m_now->load(); }
    void advance_ns(uint64_t ns) { m_now->fetch_add(ns); }
    void advance_ms(uint64_t ms) { m_now->fetch_add(ms * 1'000'000); }

    // The clock as the std::function devices take (shares state with *this).
    std::function<uint64_t()> function() const { return *this; }

  private:
    std::shared_ptr<std::atomic<uint64_t>> m_now;
};

}  // namespace rv::test
