#include "app/console_output.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "base/log.h"

namespace rv {

ConsoleOutput::Target ConsoleOutput::open_target(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        log::warn("console: output fd {}: {}; guest console output is discarded", fd,
                  std::strerror(errno));
        return {};
    }
    if (S_ISSOCK(st.st_mode)) {
        int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (dup >= 0) return Target{.fd = Fd(dup), .socket = true};
    } else if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
        // A fresh open file: its O_NONBLOCK is ours alone. (A dup would share
        // the shell's open file, and its flags, with the terminal or pipe.)
        std::string path = "/proc/self/fd/" + std::to_string(fd);
        int own = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (own >= 0) return Target{.fd = Fd(own)};
        log::debug("console: reopening fd {}: {}; setting O_NONBLOCK on it until exit", fd,
                   std::strerror(errno));
        int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        int flags = dup >= 0 ? ::fcntl(dup, F_GETFL) : -1;
        if (flags >= 0 && ::fcntl(dup, F_SETFL, flags | O_NONBLOCK) == 0)
            return Target{.fd = Fd(dup), .restore_flags = flags};
        if (dup >= 0) ::close(dup);
    } else {
        // Regular files (and block devices) never say EAGAIN: a dup keeps the
        // offset we share with stderr under `> log 2>&1`.
        int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (dup >= 0) return Target{.fd = Fd(dup)};
    }
    log::warn("console: output fd {}: {}; guest console output is discarded", fd,
              std::strerror(errno));
    return {};
}

Result<std::unique_ptr<ConsoleOutput>> ConsoleOutput::create(int fd, EventRegistrar& loop,
                                                             size_t max_buffered) {
    if (max_buffered == 0) return make_error("console: output buffer of 0 bytes");
    // Signal dispositions are process-wide. Nothing in the VMM wants SIGPIPE:
    // every write checks its result, and EPIPE is handled where it happens.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    if (::sigaction(SIGPIPE, &ignore, nullptr) != 0) return errno_error("sigaction(SIGPIPE)");

    auto wake = RV_TRY(EventFd::create(EFD_NONBLOCK | EFD_CLOEXEC));
    std::unique_ptr<ConsoleOutput> out(
        new ConsoleOutput(open_target(fd), loop, std::move(wake), max_buffered));
    ConsoleOutput* self = out.get();
    RV_TRY_VOID(loop.add(out->m_wake.fd(), EPOLLIN, [self](uint32_t) {
        (void)self->m_wake.read();
        self->flush();
    }));
    if (!out->m_target.fd.valid()) {
        std::lock_guard lock(out->m_lock);
        out->m_closed = true;
        out->m_close_reported = true;  // open_target said so
    }
    return out;
}

ConsoleOutput::ConsoleOutput(Target target, EventRegistrar& loop, EventFd wake, size_t max_buffered)
    : m_target(std::move(target)),
      m_loop(loop),
      m_wake(std::move(wake)),
      m_max_buffered(max_buffered),
      // Not value-initialised: pages are touched only as output arrives.
      m_ring(new uint8_t[max_buffered]) {}

ConsoleOutput::~ConsoleOutput() {
    m_loop.remove(m_wake.fd());
    {
        std::lock_guard lock(m_lock);
        set_watching_locked(false);
    }
    if (m_target.restore_flags && m_target.fd.valid())
        (void)::fcntl(m_target.fd.get(), F_SETFL, *m_target.restore_flags);
}

void ConsoleOutput::write(std::span<const uint8_t> bytes) {
    bool wake = false;
    {
        std::lock_guard lock(m_lock);
        if (m_closed) {
            m_dropped += bytes.size();
            return;
        }
        // Keep the newest m_max_buffered bytes: the oldest go first. Output
        // the reader never saw is counted, and reported once by the loop.
        size_t excess =
            m_size + bytes.size() > m_max_buffered ? m_size + bytes.size() - m_max_buffered : 0;
        if (excess > 0) {
            size_t from_ring = std::min(excess, m_size);
            m_head = (m_head + from_ring) % m_max_buffered;
            m_size -= from_ring;
            bytes = bytes.subspan(excess - from_ring);
            m_dropped += excess;
            if (!m_overflow_seen) {
                m_overflow_seen = true;
                wake = true;  // so the loop reports it even while waiting for EPOLLOUT
            }
        }
        size_t tail = (m_head + m_size) % m_max_buffered;
        size_t first = std::min(bytes.size(), m_max_buffered - tail);
        std::memcpy(m_ring.get() + tail, bytes.data(), first);
        std::memcpy(m_ring.get(), bytes.data() + first, bytes.size() - first);
        m_size += bytes.size();
        // While EPOLLOUT is watched the loop comes back by itself.
        if (!m_watching) wake = true;
        if (wake && m_wake_pending) wake = false;
        if (wake) m_wake_pending = true;
    }
    if (wake) (void)m_wake.write(1);
}

bool ConsoleOutput::write_out_locked() {
    while (m_size > 0 && !m_closed) {
        size_t first = std::min(m_size, m_max_buffered - m_head);
        iovec iov[2] = {{m_ring.get() + m_head, first}, {m_ring.get(), m_size - first}};
        int count = m_size > first ? 2 : 1;
        ssize_t n;
        if (m_target.socket) {
            msghdr msg{};
            msg.msg_iov = iov;
            msg.msg_iovlen = static_cast<size_t>(count);
            n = ::sendmsg(m_target.fd.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        } else {
            n = ::writev(m_target.fd.get(), iov, count);
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
        if (n <= 0) {
            // EPIPE (the reader left), EIO (terminal hung up), ENOSPC...: stop
            // writing console output; the guest keeps running.
            m_closed = true;
            m_close_errno = n < 0 ? errno : EIO;
            drop_all_locked();
            return true;
        }
        m_head = (m_head + static_cast<size_t>(n)) % m_max_buffered;
        m_size -= static_cast<size_t>(n);
    }
    if (m_size == 0) m_head = 0;
    return true;
}

void ConsoleOutput::drop_all_locked() {
    m_dropped += m_size;
    m_size = 0;
    m_head = 0;
}

void ConsoleOutput::set_watching_locked(bool watch) {
    if (watch == m_watching || !m_target.fd.valid()) return;
    if (!watch) {
        m_loop.remove(m_target.fd.get());
        m_watching = false;
        return;
    }
    auto added = m_loop.add(m_target.fd.get(), EPOLLOUT, [this](uint32_t) { flush(); });
    if (added)
        m_watching = true;
    else  // the next write() wakes the loop again
        log::debug("console: cannot wait for the output fd: {}", added.error().message());
}

void ConsoleOutput::flush() {
    {
        std::lock_guard lock(m_lock);
        m_wake_pending = false;
        bool done = write_out_locked();
        set_watching_locked(!done);
    }
    report();
}

void ConsoleOutput::report() {
    bool overflow = false, closed = false;
    int err = 0;
    {
        std::lock_guard lock(m_lock);
        if (m_overflow_seen && !m_overflow_reported) overflow = m_overflow_reported = true;
        if (m_closed && !m_close_reported) {
            closed = m_close_reported = true;
            err = m_close_errno;
        }
    }
    if (overflow)
        log::warn(
            "console: output is not being read; keeping the newest {} KiB, older guest output is "
            "dropped",
            m_max_buffered >> 10);
    if (closed)
        log::warn("console: output failed ({}); guest console output is discarded from now on",
                  std::strerror(err));
}

void ConsoleOutput::drain(std::chrono::milliseconds timeout) {
    using Clock = std::chrono::steady_clock;
    auto deadline = Clock::now() + timeout;
    uint64_t lost = 0;
    for (;;) {
        {
            std::lock_guard lock(m_lock);
            set_watching_locked(false);  // the loop is not running any more
            bool done = write_out_locked();
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (!done && left.count() <= 0) {
                lost = m_size;
                drop_all_locked();
                done = true;
            }
            if (done) break;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{.fd = m_target.fd.get(), .events = POLLOUT, .revents = 0};
        (void)::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    }
    report();
    uint64_t dropped;
    bool closed;
    {
        std::lock_guard lock(m_lock);
        dropped = m_dropped;
        closed = m_closed;
    }
    if (dropped > 0 && !closed)
        log::warn(
            "console: {} bytes of guest output dropped ({} at exit): the reader did not "
            "keep up",
            dropped, lost);
}

size_t ConsoleOutput::buffered() const {
    std::lock_guard lock(m_lock);
    return m_size;
}

uint64_t ConsoleOutput::dropped() const {
    std::lock_guard lock(m_lock);
    return m_dropped;
}

bool ConsoleOutput::closed() const {
    std::lock_guard lock(m_lock);
    return m_closed;
}

}  // namespace rv
