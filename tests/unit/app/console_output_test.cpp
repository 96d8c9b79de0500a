// Guest console output must never stall the VMM: not the vCPU that prints,
// not the event loop that serves every device, not when the reader stops
// reading (a stalled terminal, a full pipe) and not when it goes away.
#include "app/console_output.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "support/log_capture.h"
#include "vmm/event_loop.h"

namespace rv {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxBuffered = 64 << 10;

template <typename Pred>
bool wait_for(Pred pred, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (!pred()) {
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// Byte p of the guest's output stream: position mod a prime, so a test can
// tell which part of the stream arrived.
uint8_t stream_byte(size_t p) {
    return static_cast<uint8_t>(p % 251);
}

std::span<const uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Reads what is there now (fd non-blocking or polled), appending to out.
void read_available(int fd, std::vector<uint8_t>& out) {
    uint8_t buf[65536];
    for (;;) {
        pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
        if (::poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) return;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return;
        out.insert(out.end(), buf, buf + n);
    }
}

struct ConsoleOutputTest : ::testing::Test {
    std::unique_ptr<EventLoop> loop = std::move(*EventLoop::create());
    std::thread loop_thread;
    // The console: what the VMM writes (wr) and what its reader would read (rd).
    int rd{-1};
    int wr{-1};
    std::unique_ptr<ConsoleOutput> out;
    // Some other device's event source: served only while the loop is free.
    std::optional<EventFd> other;
    std::atomic<int> other_served{0};
    // Threads that may be stuck in the console (before the fix): joined in
    // TearDown after the console is drained, so what they touch lives here.
    std::vector<std::thread> helpers;
    std::atomic<bool> helper_done{false};

    void SetUp() override {
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
        rd = fds[0];
        wr = fds[1];
        // The smallest pipe (one page), so it fills at once.
        (void)::fcntl(wr, F_SETPIPE_SZ, 4096);
        other = std::move(*EventFd::create(EFD_NONBLOCK));
        ASSERT_TRUE(loop->add(other->fd(), EPOLLIN, [this](uint32_t) {
            (void)other->read();
            ++other_served;
        }));
    }

    void start(int fd, size_t max_buffered = kMaxBuffered, bool run_loop = true) {
        auto created = ConsoleOutput::create(fd, *loop, max_buffered);
        ASSERT_TRUE(created) << created.error().message();
        out = std::move(*created);
        if (run_loop) loop_thread = std::thread([this] { (void)loop->run(); });
    }

    bool other_event_served(std::chrono::milliseconds timeout = 2s) {
        int before = other_served.load();
        (void)other->write(1);
        return wait_for([&] { return other_served.load() > before; }, timeout);
    }

    void stop_loop() {
        if (!loop_thread.joinable()) return;
        loop->stop();
        loop_thread.join();
    }

    void TearDown() override {
        // Unstick anything blocked on the console: read until every writer is gone.
        std::thread drainer;
        if (rd >= 0)
            drainer = std::thread([fd = rd] {
                char buf[65536];
                while (::read(fd, buf, sizeof buf) > 0) {
                }
            });
        stop_loop();
        for (auto& t : helpers) t.join();
        out.reset();
        if (wr >= 0) ::close(wr);
        if (drainer.joinable()) drainer.join();
        if (rd >= 0) ::close(rd);
    }
};

// Nobody reads the console. The guest keeps printing: its writes return at
// once, the oldest output is dropped past the bound, and the event loop
// keeps serving other devices. When the reader comes back it gets what was
// kept: what the pipe took early on, then the newest bytes, in order.
TEST_F(ConsoleOutputTest, StalledPipeBlocksNeitherGuestNorLoop) {
    start(wr);
    constexpr size_t kTotal = 4 << 20;
    constexpr size_t kChunk = 1024;  // divides kTotal
    helpers.emplace_back([&] {
        std::vector<uint8_t> chunk(kChunk);
        for (size_t at = 0; at < kTotal; at += kChunk) {
            for (size_t i = 0; i < kChunk; ++i) chunk[i] = stream_byte(at + i);
            out->write(chunk);
        }
        helper_done = true;
    });
    ASSERT_TRUE(wait_for([&] { return helper_done.load(); }, 5s))
        << "the guest's console writes blocked on a reader that does not read";
    EXPECT_TRUE(other_event_served()) << "the event loop is stuck writing the console";
    // While the pipe stays full the loop sleeps in epoll (EPOLLOUT), not in a retry loop.
    timespec cpu0{}, cpu1{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
    std::this_thread::sleep_for(200ms);
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
    auto cpu_ms = (cpu1.tv_sec - cpu0.tv_sec) * 1000 + (cpu1.tv_nsec - cpu0.tv_nsec) / 1'000'000;
    EXPECT_LT(cpu_ms, 50) << "the event loop spins on a full pipe";
    EXPECT_LE(out->buffered(), kMaxBuffered);
    uint64_t dropped = out->dropped();
    EXPECT_GT(dropped, 0u);

    // The reader catches up: the EPOLLOUT path writes the rest.
    std::vector<uint8_t> got;
    bool all = wait_for(
        [&] {
            read_available(rd, got);
            return got.size() >= kTotal - dropped;
        },
        5s);
    EXPECT_TRUE(all) << "got " << got.size() << " of " << kTotal - dropped;
    ASSERT_EQ(got.size(), kTotal - dropped);
    EXPECT_EQ(out->buffered(), 0u);
    for (size_t i = 1; i <= kMaxBuffered; ++i)
        ASSERT_EQ(got[got.size() - i], stream_byte(kTotal - i)) << "newest output kept, in order";
}

// The reader exits. A write to the pipe raises SIGPIPE, which by default
// kills the process: the VMM must survive, stop writing and keep serving.
TEST_F(ConsoleOutputTest, ReaderGoneDoesNotKillTheProcess) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            ::signal(SIGPIPE, SIG_DFL);  // as a fresh VMM process starts
            start(wr);
            ::close(rd);
            rd = -1;
            out->write(bytes("guest output nobody reads\r\n"));
            bool closed = wait_for([&] { return out->closed(); }, 2s);
            for (int i = 0; i < 1000; ++i) out->write(bytes("more\r\n"));
            bool served = other_event_served();
            stop_loop();
            std::_Exit(!closed ? 10 : !served ? 11 : 0);
        },
        ::testing::ExitedWithCode(0), "");
}

TEST_F(ConsoleOutputTest, ReaderGoneStopsOutputAndLogsOnce) {
    test::LogCapture log;
    start(wr);
    ::close(rd);
    rd = -1;
    out->write(bytes("first\r\n"));
    ASSERT_TRUE(wait_for([&] { return out->closed(); }, 2s));
    for (int i = 0; i < 1000; ++i) out->write(bytes("more\r\n"));
    EXPECT_TRUE(other_event_served());
    EXPECT_EQ(out->buffered(), 0u) << "nothing is kept for a console that is gone";
    EXPECT_EQ(log.count("console"), 1u);
}

// O_NONBLOCK lives in the open file description, which stdout shares with
// the parent shell (and with our own stderr): the console must not set it
// there, or the shell's next write fails with EAGAIN.
TEST_F(ConsoleOutputTest, LeavesTheSharedPipeBlocking) {
    start(wr);
    EXPECT_FALSE(::fcntl(wr, F_GETFL) & O_NONBLOCK);
    out->write(bytes("hello\r\n"));
    std::vector<uint8_t> got;
    EXPECT_TRUE(wait_for(
        [&] {
            read_available(rd, got);
            return got.size() == 7;
        },
        2s));
    stop_loop();
    out.reset();
    EXPECT_FALSE(::fcntl(wr, F_GETFL) & O_NONBLOCK);
}

// A terminal that stops taking output (Ctrl-S, a stalled terminal emulator,
// an unread pty): same guarantees, and the terminal's flags stay as they were.
TEST_F(ConsoleOutputTest, StalledTerminal) {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) GTEST_SKIP() << "no ptys here";
    ASSERT_EQ(::grantpt(master), 0);
    ASSERT_EQ(::unlockpt(master), 0);
    int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(slave, 0);
    termios raw{};
    ASSERT_EQ(::tcgetattr(slave, &raw), 0);
    ::cfmakeraw(&raw);  // bytes through unchanged, as with an interactive guest
    ASSERT_EQ(::tcsetattr(slave, TCSANOW, &raw), 0);
    int flags_before = ::fcntl(slave, F_GETFL);

    start(slave);
    constexpr size_t kTotal = 2 << 20;
    helpers.emplace_back([&] {
        std::vector<uint8_t> chunk(512);
        for (size_t at = 0; at < kTotal; at += chunk.size()) {
            for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = stream_byte(at + i);
            out->write(chunk);
        }
        helper_done = true;
    });
    bool done = wait_for([&] { return helper_done.load(); }, 5s);
    bool served = other_event_served();
    EXPECT_EQ(::fcntl(slave, F_GETFL), flags_before);
    if (!done || !served) {
        ::close(master);  // hangs the terminal up: unblocks a stuck write with EIO
        master = -1;
    }
    EXPECT_TRUE(done) << "the guest's console writes blocked on a stalled terminal";
    EXPECT_TRUE(served) << "the event loop is stuck writing to a stalled terminal";
    if (master >= 0) {
        uint64_t dropped = out->dropped();
        EXPECT_GT(dropped, 0u);
        std::vector<uint8_t> got;
        EXPECT_TRUE(wait_for(
            [&] {
                read_available(master, got);
                return got.size() >= kTotal - dropped;
            },
            5s))
            << "got " << got.size() << " of " << kTotal - dropped;
        ASSERT_FALSE(got.empty());
        EXPECT_EQ(got.back(), stream_byte(kTotal - 1));
    }
    stop_loop();
    for (auto& t : helpers) t.join();
    helpers.clear();
    out.reset();
    EXPECT_EQ(::fcntl(slave, F_GETFL), flags_before);
    ::close(slave);
    if (master >= 0) ::close(master);
}

// Under systemd stdout is a socket to the journal: written with MSG_DONTWAIT
// (the socket's own flags untouched) and no SIGPIPE when the peer goes away.
TEST_F(ConsoleOutputTest, StalledThenClosedSocket) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int small = 4096;
    (void)::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    start(sv[0]);
    helpers.emplace_back([&] {
        std::vector<uint8_t> chunk(1024, 's');
        for (int i = 0; i < 1024; ++i) out->write(chunk);
        helper_done = true;
    });
    EXPECT_TRUE(wait_for([&] { return helper_done.load(); }, 5s));
    EXPECT_TRUE(other_event_served());
    EXPECT_GT(out->dropped(), 0u);
    EXPECT_FALSE(::fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    ::close(sv[1]);  // the journal goes away
    EXPECT_TRUE(wait_for([&] { return out->closed(); }, 2s));
    EXPECT_TRUE(other_event_served());
    stop_loop();
    for (auto& t : helpers) t.join();
    helpers.clear();
    out.reset();
    ::close(sv[0]);
}

// `ringvisor run > log 2>&1`: stdout and stderr share one file offset, so
// the console writes through that same open file (not a reopened one that
// would write over the log lines).
TEST_F(ConsoleOutputTest, RegularFileSharesTheOffsetWithStderr) {
    char path[] = "/tmp/rv-console-XXXXXX";
    int file = ::mkstemp(path);
    ASSERT_GE(file, 0);
    ::unlink(path);
    start(file);
    out->write(bytes("guest 1\n"));
    ASSERT_TRUE(wait_for([&] { return out->buffered() == 0; }, 2s));
    ASSERT_EQ(::write(file, "log line\n", 9), 9);  // as log::warn to fd 2 would
    out->write(bytes("guest 2\n"));
    ASSERT_TRUE(wait_for([&] { return out->buffered() == 0; }, 2s));
    stop_loop();
    out->drain(100ms);
    std::string content(64, '\0');
    ssize_t n = ::pread(file, content.data(), content.size(), 0);
    ASSERT_GT(n, 0);
    content.resize(static_cast<size_t>(n));
    EXPECT_EQ(content, "guest 1\nlog line\nguest 2\n");
    ::close(file);
}

// At exit the VMM gives a slow reader a moment, then gives up on the rest.
TEST_F(ConsoleOutputTest, DrainAtExitIsBounded) {
    test::LogCapture log;
    start(wr, kMaxBuffered, /*run_loop=*/false);  // the VM is exiting: only drain() writes
    auto t0 = Clock::now();
    helpers.emplace_back([&] {
        std::vector<uint8_t> chunk(kMaxBuffered / 2, 'x');
        for (int i = 0; i < 8; ++i) out->write(chunk);
        out->drain(200ms);
        helper_done = true;
    });
    ASSERT_TRUE(wait_for([&] { return helper_done.load(); }, 3s))
        << "drain() waits for a reader that does not read";
    EXPECT_LT(Clock::now() - t0, 2s);
    EXPECT_EQ(out->buffered(), 0u);
    EXPECT_GT(out->dropped(), kMaxBuffered / 2);
    EXPECT_GE(log.count("dropped"), 1u) << "the loss is reported";
}

// Output the reader keeps up with arrives whole and in order.
TEST_F(ConsoleOutputTest, EverythingArrivesWhenTheReaderKeepsUp) {
    start(wr, 1 << 20);  // room for all of it: nothing may be dropped
    constexpr size_t kTotal = 1 << 20;
    std::vector<uint8_t> got;
    helpers.emplace_back([&] {
        std::vector<uint8_t> chunk(100);
        for (size_t at = 0; at < kTotal; at += chunk.size()) {
            size_t n = std::min(chunk.size(), kTotal - at);
            for (size_t i = 0; i < n; ++i) chunk[i] = stream_byte(at + i);
            out->write(std::span(chunk).first(n));
            // A guest UART is slow: ~100 bytes per 10 µs here, so a reader keeps up.
            std::this_thread::sleep_for(10us);
        }
        helper_done = true;
    });
    EXPECT_TRUE(wait_for(
        [&] {
            read_available(rd, got);
            return got.size() >= kTotal;
        },
        20s));
    ASSERT_EQ(got.size(), kTotal);
    EXPECT_EQ(out->dropped(), 0u);
    for (size_t i = 0; i < kTotal; ++i) ASSERT_EQ(got[i], stream_byte(i)) << i;
}

}  // namespace
}  // namespace rv
