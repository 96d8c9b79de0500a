// Guest console output on its way to the host (stdout by default). vCPU
// threads hand bytes over with write(), which never blocks and never touches
// the fd; the event loop writes what the fd accepts and waits for EPOLLOUT for
// the rest. A reader that stops reading (a stalled terminal, a full pipe)
// therefore stalls neither the guest nor the loop that serves every device:
// past a bound the oldest unwritten output is dropped and counted. A reader
// that goes away (EPIPE) ends console output; the guest keeps running.
//
// The fd is written through an open file of our own where that is possible,
// so O_NONBLOCK never leaks into a terminal or pipe we share with the parent
// shell (file status flags belong to the open file, not the fd):
//   - terminals and pipes are reopened through /proc/self/fd;
//   - sockets are written with MSG_DONTWAIT;
//   - regular files are written through a dup: they never return EAGAIN, and
//     keeping their shared offset keeps `> log 2>&1` intact;
//   - if a reopen fails, O_NONBLOCK is set on the shared file and the
//     original flags are restored when the ConsoleOutput goes away.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>

#include "base/error.h"
#include "base/fd.h"
#include "devices/event_registrar.h"

namespace rv {

class ConsoleOutput {
  public:
    static constexpr size_t kDefaultMaxBuffered = 1 << 20;

    // fd stays the caller's (we write through our own dup or reopen of it).
    // Also ignores SIGPIPE for the whole process: a write to a pipe whose
    // reader left must be an EPIPE we handle, not the VMM's death.
    static Result<std::unique_ptr<ConsoleOutput>> create(int fd, EventRegistrar& loop,
                                                         size_t max_buffered = kDefaultMaxBuffered);
    // Destroy once the event loop no longer runs (its handlers point here).
    ~ConsoleOutput();
    ConsoleOutput(const ConsoleOutput&) = delete;
    ConsoleOutput& operator=(const ConsoleOutput&) = delete;

    // Any thread (vCPUs): queues the bytes and wakes the loop. Never blocks
    // on the console; past the bound the oldest queued bytes are dropped.
    void write(std::span<const uint8_t> bytes);
    // At exit, with the event loop stopped: writes what is queued, waiting at
    // most `timeout` for a slow reader, then drops the rest (and says so).
    void drain(std::chrono::milliseconds timeout);

    size_t buffered() const;
    // Bytes of guest output that will never reach the fd.
    uint64_t dropped() const;
    // The fd failed (EPIPE, EIO, ...): output is discarded from now on.
    bool closed() const;

  private:
    struct Target {
        Fd fd;
        bool socket{false};
        std::optional<int> restore_flags;  // set O_NONBLOCK on a shared file: undo it
    };
    static Target open_target(int fd);

    ConsoleOutput(Target target, EventRegistrar& loop, EventFd wake, size_t max_buffered);

    // Event loop: writes what the fd takes, then watches for EPOLLOUT while
    // bytes remain.
    void flush();
    // Writes from the head of the ring until it is empty or the fd would
    // block. False when the fd would block with bytes left.
    bool write_out_locked();
    void drop_all_locked();
    void set_watching_locked(bool watch);
    // Logs what happened since the last call; outside m_lock.
    void report();

    Target m_target;
    EventRegistrar& m_loop;
    EventFd m_wake;
    const size_t m_max_buffered;

    mutable std::mutex m_lock;          // everything below
    std::unique_ptr<uint8_t[]> m_ring;  // m_max_buffered bytes
    size_t m_head{0};
    size_t m_size{0};
    bool m_wake_pending{false};  // the wake eventfd was written and not yet served
    bool m_watching{false};      // EPOLLOUT registered on the fd
    bool m_closed{false};
    int m_close_errno{0};
    uint64_t m_dropped{0};
    // One-time reports, logged by the event loop (the vCPU never writes stderr).
    bool m_overflow_seen{false};
    bool m_overflow_reported{false};
    bool m_close_reported{false};
};

}  // namespace rv
