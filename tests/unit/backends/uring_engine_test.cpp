// The io_uring engine when the kernel refuses submissions: through the
// submit hook a test makes io_uring_submit fail hard, fail transiently or
// take only part of a batch. Whatever happens, every started step completes
// exactly once, and wait() never blocks on a step the kernel does not hold
// (virtio-blk reset and IDE SRST drain the engine under device and PCI locks:
// a wait that never returns wedges the whole VMM).
//
// A read from an empty pipe stays in the kernel until the test writes to the
// pipe: that is how these tests keep a step "in flight" on purpose.
#include <gtest/gtest.h>
#include <liburing.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "backends/block/io_engine.h"
#include "base/fd.h"
#include "block_test_util.h"

namespace rv {
namespace {

using block_detail::IoEngine;
using block_detail::IoStep;
using block_detail::StepResult;

// Interrupts a blocked io_uring_wait_cqe every 100 ms (SIGALRM without
// SA_RESTART makes it return -EINTR), so a test of a hanging engine fails
// with a message instead of hanging the test run.
class WaitWatchdog {
  public:
    WaitWatchdog() {
        struct sigaction sa {};
        sa.sa_handler = [](int) {};
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART: the blocked syscall must return
        ::sigaction(SIGALRM, &sa, &m_old_action);
        itimerval every{{0, 100'000}, {0, 100'000}};
        ::setitimer(ITIMER_REAL, &every, nullptr);
    }
    ~WaitWatchdog() {
        itimerval off{};
        ::setitimer(ITIMER_REAL, &off, nullptr);
        ::sigaction(SIGALRM, &m_old_action, nullptr);
    }
    WaitWatchdog(const WaitWatchdog&) = delete;
    WaitWatchdog& operator=(const WaitWatchdog&) = delete;

  private:
    struct sigaction m_old_action {};
};

// What BlockBackend::drain does (wait, then reap, until nothing is
// outstanding), bounded by a deadline. Returns user -> result; a step that
// completes twice, or a wait() that only returned because the watchdog
// interrupted it, is a test failure. (Every step these tests drain can
// finish at once: its data is on disk or already in the pipe.)
std::map<uint64_t, int64_t> drain(IoEngine& engine, size_t count,
                                  std::chrono::milliseconds deadline = std::chrono::seconds(2)) {
    WaitWatchdog watchdog;
    std::map<uint64_t, int64_t> results;
    std::vector<StepResult> batch;
    const auto until = std::chrono::steady_clock::now() + deadline;
    size_t blocked = 0;
    while (results.size() < count && std::chrono::steady_clock::now() < until) {
        const auto before = std::chrono::steady_clock::now();
        engine.wait();
        blocked += std::chrono::steady_clock::now() - before > std::chrono::milliseconds(50);
        batch.clear();
        engine.reap(batch);
        for (const StepResult& r : batch) {
            EXPECT_TRUE(results.emplace(r.user, r.result).second)
                << "step " << r.user << " completed twice";
        }
    }
    EXPECT_EQ(blocked, 0u) << "wait() blocked until the watchdog interrupted it: it waited for "
                              "a step the kernel does not hold";
    return results;
}

std::vector<StepResult> reap_now(IoEngine& engine) {
    std::vector<StepResult> out;
    engine.reap(out);
    return out;
}

// liburing's submit with the kernel taking at most `limit` entries: publish
// every prepared entry (as io_uring_submit does), then enter with a smaller
// count. This leaves the ring exactly as a kernel that stops early does.
int submit_at_most(io_uring& ring, unsigned limit) {
    io_uring_sq& sq = ring.sq;
    sq.sqe_head = sq.sqe_tail;
    io_uring_smp_store_release(sq.ktail, sq.sqe_tail);
    const unsigned ready = sq.sqe_tail - *sq.khead;
    return io_uring_enter(static_cast<unsigned>(ring.ring_fd), std::min(ready, limit), 0, 0,
                          nullptr);
}

// How the fake kernel answers the next submissions.
struct SubmitScript {
    enum class Mode { Real, Refuse, AtMostOne, OneThenRefuse };
    Mode mode{Mode::Real};
    int error{EAGAIN};      // Refuse: io_uring_submit's -errno
    int refusals_left{-1};  // Refuse: then Real; -1 = forever
    int calls{0};

    int operator()(io_uring& ring) {
        ++calls;
        switch (mode) {
            case Mode::Real:
                return io_uring_submit(&ring);
            case Mode::AtMostOne:
                return submit_at_most(ring, 1);
            case Mode::OneThenRefuse:
                mode = Mode::Refuse;
                return submit_at_most(ring, 1);
            case Mode::Refuse:
                if (refusals_left == 0) return io_uring_submit(&ring);
                if (refusals_left > 0) --refusals_left;
                return -error;
        }
        return -EINVAL;
    }
};

class UringEngineFaults : public testing::Test {
  protected:
    static constexpr uint64_t kSize = 64 << 10;

    void SetUp() override {
        auto event = EventFd::create(EFD_NONBLOCK | EFD_CLOEXEC);
        ASSERT_TRUE(event);
        m_event = std::make_unique<EventFd>(std::move(*event));
        m_image.write(0, test::pattern(kSize, 5));
        m_file = ::open(m_image.path().c_str(), O_RDWR | O_CLOEXEC);
        ASSERT_GE(m_file, 0);
        int fds[2];
        // Blocking: io_uring completes a read of an O_NONBLOCK pipe with -EAGAIN.
        ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
        m_pipe_read = fds[0];
        m_pipe_write = fds[1];
    }
    void TearDown() override {
        m_engine.reset();  // before the fds its steps use
        for (int fd : {m_file, m_pipe_read, m_pipe_write})
            if (fd >= 0) ::close(fd);
    }

    // An engine over the image (or the pipe); skips where io_uring is refused.
    bool make_engine(int fd, unsigned depth = 8) {
        auto engine = block_detail::make_uring_engine(
            fd, m_event->fd(), depth, [this](io_uring& ring) { return m_script(ring); });
        if (!engine) {
            m_skip = engine.error().message();
            return false;
        }
        m_engine = std::move(*engine);
        return true;
    }

    // A 4 KiB read of the image at `offset` into buffer `slot`.
    void start_read(uint64_t user, uint64_t offset, size_t slot) {
        m_iov[slot] = iovec{m_buf[slot].data(), m_buf[slot].size()};
        m_engine->start(IoStep{.kind = IoStep::Kind::Readv,
                               .user = user,
                               .offset = offset,
                               .iov = &m_iov[slot],
                               .iovcnt = 1});
    }
    // A 4-byte read from the pipe: stays in the kernel until data arrives.
    void start_pipe_read(uint64_t user, size_t slot) {
        m_iov[slot] = iovec{m_buf[slot].data(), 4};
        m_engine->start(IoStep{.kind = IoStep::Kind::Readv,
                               .user = user,
                               .offset = 0,
                               .iov = &m_iov[slot],
                               .iovcnt = 1});
    }
    void feed_pipe(size_t bytes) {
        std::string data(bytes, 'x');
        ASSERT_EQ(::write(m_pipe_write, data.data(), data.size()), static_cast<ssize_t>(bytes));
    }
    bool event_signalled() const {
        uint64_t n = 0;
        return ::read(m_event->fd(), &n, sizeof(n)) == sizeof(n) && n > 0;
    }
    std::vector<uint8_t> buffer(size_t slot) const {
        return {m_buf[slot].begin(), m_buf[slot].end()};
    }
    std::vector<uint8_t> image(uint64_t offset) const { return m_image.read(offset, 4096); }

    test::TempImage m_image{kSize};
    std::unique_ptr<EventFd> m_event;
    int m_file{-1};
    int m_pipe_read{-1};
    int m_pipe_write{-1};
    SubmitScript m_script;
    std::unique_ptr<IoEngine> m_engine;
    std::string m_skip;
    std::array<std::array<uint8_t, 4096>, 8> m_buf{};
    std::array<iovec, 8> m_iov{};
};

#define ENGINE_OR_SKIP(fd) \
    if (!make_engine(fd)) GTEST_SKIP() << "io_uring unavailable: " << m_skip

// A hard error (the ring is unusable) fails the refused steps with -EIO
// through reap(), announced on the eventfd, so the device reports an I/O
// error; drain() returns at once instead of waiting for completions the
// kernel never got. The ring keeps working for later steps, and the failed
// ones are never executed behind our back.
TEST_F(UringEngineFaults, HardSubmitErrorFailsTheStepsInsteadOfHanging) {
    ENGINE_OR_SKIP(m_file);
    m_script.mode = SubmitScript::Mode::Refuse;
    m_script.error = EBADF;
    start_read(1, 0, 0);
    start_read(2, 4096, 1);
    start_read(3, 8192, 2);
    EXPECT_TRUE(event_signalled()) << "the failures must wake the event loop";

    auto results = drain(*m_engine, 3);
    ASSERT_EQ(results.size(), 3u)
        << "drain still waiting after 2 s: wait() blocked on steps the kernel never accepted";
    for (uint64_t user : {1, 2, 3}) EXPECT_EQ(results[user], -EIO) << "step " << user;

    m_script.mode = SubmitScript::Mode::Real;
    start_read(4, 12288, 3);
    auto later = drain(*m_engine, 1);
    ASSERT_EQ(later.size(), 1u);
    EXPECT_EQ(later[4], 4096);
    EXPECT_EQ(buffer(3), image(12288));
    ::usleep(20'000);  // time for a wrongly resubmitted step to complete
    EXPECT_TRUE(reap_now(*m_engine).empty()) << "a failed step was run by the kernel after all";
}

// EAGAIN with nothing in flight: the engine retries by itself, the step runs.
TEST_F(UringEngineFaults, TransientRefusalIsRetried) {
    ENGINE_OR_SKIP(m_file);
    m_script.mode = SubmitScript::Mode::Refuse;
    m_script.error = EAGAIN;
    m_script.refusals_left = 1;
    start_read(1, 4096, 0);

    auto results = drain(*m_engine, 1);
    ASSERT_EQ(results.size(), 1u)
        << "drain still waiting after 2 s: the refused step was counted as in the kernel";
    EXPECT_EQ(results[1], 4096);
    EXPECT_EQ(buffer(0), image(4096));
}

// EAGAIN/EBUSY while another step is in the kernel: the refused step stays
// queued (not failed) until a completion frees resources, then goes in.
TEST_F(UringEngineFaults, RefusedStepWaitsForACompletionThenRuns) {
    ENGINE_OR_SKIP(m_pipe_read);
    start_pipe_read(1, 0);  // in the kernel until the pipe has data
    m_script.mode = SubmitScript::Mode::Refuse;
    m_script.error = EBUSY;
    start_pipe_read(2, 1);
    EXPECT_TRUE(reap_now(*m_engine).empty()) << "refused transiently, not failed";

    m_script.mode = SubmitScript::Mode::Real;
    feed_pipe(8);
    auto results = drain(*m_engine, 2);
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(results[1], 4);
    EXPECT_EQ(results[2], 4);
}

// A refusal that outlasts everything in flight fails the step rather than
// leave drain() spinning or blocking on it.
TEST_F(UringEngineFaults, PersistentRefusalFailsOnceNothingIsInFlight) {
    ENGINE_OR_SKIP(m_pipe_read);
    start_pipe_read(1, 0);
    m_script.mode = SubmitScript::Mode::Refuse;
    m_script.error = EAGAIN;
    start_pipe_read(2, 1);
    feed_pipe(4);  // completes step 1 only

    auto results = drain(*m_engine, 2);
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(results[1], 4);
    EXPECT_EQ(results[2], -EIO);
}

// The kernel takes one entry per submit: the rest stays queued and is
// submitted again; drain() does not wait for entries still in our ring.
TEST_F(UringEngineFaults, PartialSubmitKeepsTheRestQueued) {
    ENGINE_OR_SKIP(m_pipe_read);
    start_pipe_read(1, 0);
    m_script.mode = SubmitScript::Mode::Refuse;  // let 2 and 3 pile up in the ring
    m_script.error = EAGAIN;
    start_pipe_read(2, 1);
    start_pipe_read(3, 2);
    m_script.mode = SubmitScript::Mode::AtMostOne;
    feed_pipe(12);

    auto results = drain(*m_engine, 3);
    ASSERT_EQ(results.size(), 3u)
        << "drain still waiting after 2 s: a step left in the submission ring was never submitted";
    for (uint64_t user : {1, 2, 3}) EXPECT_EQ(results[user], 4) << "step " << user;
}

// The kernel takes one entry, then the ring fails hard: the taken step runs
// (it is the kernel's), the others fail, and nothing runs twice.
TEST_F(UringEngineFaults, HardErrorAfterAPartialSubmitFailsOnlyTheRest) {
    ENGINE_OR_SKIP(m_pipe_read);
    start_pipe_read(1, 0);
    m_script.mode = SubmitScript::Mode::Refuse;
    m_script.error = EAGAIN;
    start_pipe_read(2, 1);
    start_pipe_read(3, 2);
    start_pipe_read(4, 3);
    m_script.mode = SubmitScript::Mode::OneThenRefuse;
    m_script.error = ENXIO;
    feed_pipe(8);

    auto results = drain(*m_engine, 4);
    ASSERT_EQ(results.size(), 4u);
    EXPECT_EQ(results[1], 4);
    EXPECT_EQ(results[2], 4);
    EXPECT_EQ(results[3], -EIO);
    EXPECT_EQ(results[4], -EIO);

    m_script.mode = SubmitScript::Mode::Real;
    feed_pipe(4);
    start_pipe_read(5, 4);
    auto later = drain(*m_engine, 1);
    ASSERT_EQ(later.size(), 1u);
    EXPECT_EQ(later[5], 4) << "the failed steps must not have read the pipe";
}

// Same for a batch the engine builds itself: steps beyond the depth wait in
// the engine and go in as completions free slots, one per submit here.
TEST_F(UringEngineFaults, PartialSubmitOfAFullQueueCompletesEverything) {
    ENGINE_OR_SKIP(m_file);
    m_script.mode = SubmitScript::Mode::AtMostOne;
    for (uint64_t i = 0; i < 8; ++i) start_read(i, i * 4096, i);
    auto results = drain(*m_engine, 8);
    ASSERT_EQ(results.size(), 8u);
    for (uint64_t i = 0; i < 8; ++i) {
        EXPECT_EQ(results[i], 4096) << "step " << i;
        EXPECT_EQ(buffer(i), image(i * 4096)) << "step " << i;
    }
}

// With no step anywhere, wait() returns at once.
TEST_F(UringEngineFaults, WaitWithNothingInFlightReturns) {
    ENGINE_OR_SKIP(m_file);
    WaitWatchdog watchdog;
    const auto start = std::chrono::steady_clock::now();
    m_engine->wait();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
}

// Plugged, steps wait in the SQ ring; the last unplug() submits them all in
// one io_uring_submit. Unplugged, each step is its own submission.
TEST_F(UringEngineFaults, PlugBatchesSubmissions) {
    ENGINE_OR_SKIP(m_file);
    m_engine->plug();
    m_engine->plug();  // nests
    for (uint64_t i = 0; i < 5; ++i) start_read(i, i * 4096, i);
    EXPECT_EQ(m_script.calls, 0);
    EXPECT_TRUE(reap_now(*m_engine).empty()) << "a plugged step reached the kernel";
    m_engine->unplug();
    EXPECT_EQ(m_script.calls, 0);
    m_engine->unplug();
    EXPECT_EQ(m_script.calls, 1);
    auto results = drain(*m_engine, 5);
    ASSERT_EQ(results.size(), 5u);
    for (uint64_t i = 0; i < 5; ++i) {
        EXPECT_EQ(results[i], 4096);
        EXPECT_EQ(buffer(i), image(i * 4096));
    }
    const int before = m_script.calls;
    start_read(5, 0, 5);
    start_read(6, 4096, 6);
    EXPECT_EQ(m_script.calls, before + 2);
    EXPECT_EQ(drain(*m_engine, 2).size(), 2u);
}

// wait() on plugged steps submits them first instead of waiting forever.
TEST_F(UringEngineFaults, WaitUnplugs) {
    ENGINE_OR_SKIP(m_file);
    WaitWatchdog watchdog;
    m_engine->plug();
    start_read(1, 0, 0);
    m_engine->wait();
    EXPECT_EQ(m_script.calls, 1);
    auto results = drain(*m_engine, 1);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[1], 4096);
}

}  // namespace
}  // namespace rv
