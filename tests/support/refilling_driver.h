// A driver that keeps a FakeDriverQueue's avail ring full: whenever the
// device has returned a chain it republishes it, so a device that drains
// "until the ring is empty" never stops. For fairness tests: one notify must
// end after a bounded amount of work, and the rest must still be served (by
// the device's own continuation, or after the notifies the driver asked for).
//
// Two ways to drive it:
//   - refill() from a hook that runs while the device drains (deterministic:
//     the ring is never seen empty);
//   - start() a thread that refills concurrently, as a guest's vCPU would
//     (realistic, but whether the device ever catches up is up to the
//     scheduler).
//
//   std::vector<uint16_t> heads = ...;  // queue.size() chains, published once
//   RefillingDriver driver(queue, heads);
//   driver.start();                     // or: call driver.refill() from a hook
//   device.queue_notify(0);             // must return
//   driver.stop();                      // then pump the event loop, deliver
//   if (driver.take_kick()) ...         // the notifies it asked for, and
//                                       // compare used_idx with avail_idx
//
// Assumes the device completes chains in the order it takes them (true for
// requests it answers without I/O): the head published at avail position p is
// reused at p + size() once used_idx shows position p done. It touches only
// the rings (raw pokes), never the fake's bookkeeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/fake_driver_queue.h"

namespace rv::test {

class RefillingDriver {
  public:
    // Publishes at most `max_chains` chains in all (the initial ones
    // included), so a device that never yields fails the test, not hangs it.
    RefillingDriver(FakeDriverQueue& queue, std::vector<uint16_t> heads,
                    uint64_t max_chains = 100000)
        : m_queue(queue),
          m_heads(std::move(heads)),
          m_max_chains(max_chains),
          m_idx(queue.avail_idx()),
          m_published(m_heads.size()) {
        if (m_heads.size() != queue.size() || m_idx != queue.size())
            throw std::runtime_error("RefillingDriver: publish one chain per queue entry first");
    }
    ~RefillingDriver() { stop(); }
    RefillingDriver(const RefillingDriver&) = delete;
    RefillingDriver& operator=(const RefillingDriver&) = delete;

    // Republishes into every slot the device has returned; returns how many.
    // Call from one thread at a time.
    size_t refill() {
        size_t n = 0;
        const uint16_t size = m_queue.size();
        while (!m_stop && m_published < m_max_chains) {
            std::atomic_thread_fence(std::memory_order_acquire);
            if (static_cast<uint16_t>(m_idx - m_queue.used_idx()) >= size) break;  // full
            m_queue.set_avail_ring(m_idx % size, m_heads[m_idx % size]);
            std::atomic_thread_fence(std::memory_order_release);  // slot before index
            const uint16_t old = m_idx++;
            m_queue.set_avail_idx(m_idx);
            std::atomic_thread_fence(std::memory_order_seq_cst);  // index before avail_event
            const uint16_t event = m_queue.avail_event();
            if (static_cast<uint16_t>(m_idx - event - 1) < static_cast<uint16_t>(m_idx - old))
                m_kick = true;  // 2.7.10: the driver would notify now
            ++m_published;
            ++n;
        }
        return n;
    }

    // Refills from a thread until stop(), max_chains, or `limit`.
    void start(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        m_thread = std::thread([this, limit] {
            const auto deadline = std::chrono::steady_clock::now() + limit;
            m_running = true;
            while (!m_stop && m_published < m_max_chains &&
                   std::chrono::steady_clock::now() < deadline)
                refill();
        });
        while (!m_running) std::this_thread::yield();  // the device meets a driver at work
    }
    // Ends refilling (and joins the thread, if any).
    void stop() {
        m_stop = true;
        if (m_thread.joinable()) m_thread.join();
    }

    // Chains published so far, the initial ones included.
    uint64_t published() const { return m_published.load(); }
    // Whether the driver would have notified since the last call (EVENT_IDX
    // rule); the test delivers that notify.
    bool take_kick() { return m_kick.exchange(false); }

  private:
    FakeDriverQueue& m_queue;
    std::vector<uint16_t> m_heads;
    const uint64_t m_max_chains;
    uint16_t m_idx;  // the driver's avail index
    std::atomic<uint64_t> m_published;
    std::atomic<bool> m_stop{false};
    std::atomic<bool> m_kick{false};
    std::atomic<bool> m_running{false};
    std::thread m_thread;
};

}  // namespace rv::test
