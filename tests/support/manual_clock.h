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

}  // namespace rv::test
