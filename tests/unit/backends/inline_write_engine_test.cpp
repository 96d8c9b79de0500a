// cache=writeback's engine: writes up to kInlineWriteMax run inline (the
// synchronous engine), every other step through io_uring. Against recording engines, which steps
// go where and when wait() may block; against a real image, that a buffered
// write has completed by the time submit_write returns.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "backends/block/block_backend.h"
#include "backends/block/io_engine.h"
#include "block_test_util.h"

namespace rv {
namespace {

using block_detail::IoEngine;
using block_detail::IoStep;
using block_detail::StepResult;

// Records what it is given; a started step finishes when the test says.
struct Recorder final : IoEngine {
    struct Log {
        std::vector<uint64_t> started;
        std::vector<StepResult> finished;
        int waits{0};
        int plugs{0};
        int unplugs{0};
    };
    explicit Recorder(Log& into) : log(into) {}
    void start(const IoStep& step) override { log.started.push_back(step.user); }
    void reap(std::vector<StepResult>& out) override {
        out.insert(out.end(), log.finished.begin(), log.finished.end());
        log.finished.clear();
    }
    void wait() override { ++log.waits; }
    void plug() override { ++log.plugs; }
    void unplug() override { ++log.unplugs; }
    Log& log;
};

TEST(InlineWriteEngine, SmallWritesGoInlineEverythingElseToTheRing) {
    Recorder::Log ring, writes;
    auto engine = block_detail::make_inline_write_engine(std::make_unique<Recorder>(ring),
                                                         std::make_unique<Recorder>(writes));
    constexpr uint64_t kMax = block_detail::kInlineWriteMax;
    iovec at_max[] = {{nullptr, 4096}, {nullptr, kMax - 4096}};
    iovec over[] = {{nullptr, kMax}, {nullptr, 512}};
    engine->plug();
    engine->start({.kind = IoStep::Kind::Readv, .user = 1, .iov = at_max, .iovcnt = 2});
    engine->start({.kind = IoStep::Kind::Writev, .user = 2, .iov = at_max, .iovcnt = 1});
    engine->start({.kind = IoStep::Kind::Fdatasync, .user = 3});
    engine->start({.kind = IoStep::Kind::Fallocate, .user = 4});
    engine->start({.kind = IoStep::Kind::Writev, .user = 5, .iov = at_max, .iovcnt = 2});
    engine->start({.kind = IoStep::Kind::Writev, .user = 6, .iov = over, .iovcnt = 2});
    engine->unplug();
    EXPECT_EQ(ring.started, (std::vector<uint64_t>{1, 3, 4, 6}));
    EXPECT_EQ(writes.started, (std::vector<uint64_t>{2, 5}));
    EXPECT_EQ(ring.plugs, 1);
    EXPECT_EQ(ring.unplugs, 1);

    // A finished inline write: wait() returns without waiting on the ring,
    // and reap() hands it out once, with the ring's.
    writes.finished.push_back({2, 4096});
    engine->wait();
    EXPECT_EQ(ring.waits, 0);
    ring.finished.push_back({1, 512});
    std::vector<StepResult> got;
    engine->reap(got);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].user, 2u);
    EXPECT_EQ(got[0].result, 4096);
    EXPECT_EQ(got[1].user, 1u);
    got.clear();
    engine->reap(got);
    EXPECT_TRUE(got.empty());
    // Nothing inline to hand out: wait() waits on the ring.
    engine->wait();
    EXPECT_EQ(ring.waits, 1);
}

// With io_uring and cache=writeback a small write has reached the page cache when
// submit_write returns: its completion is there without waiting (io_uring
// would have handed it to a worker thread). A read still goes by the ring.
TEST(InlineWriteEngine, BufferedWriteHasCompletedWhenSubmitReturns) {
    test::TempImage image(1 << 20);
    auto backend = BlockBackend::open(
        image.path(), {.cache = BlockOptions::Cache::Writeback, .engine = BlockOptions::Engine::IoUring});
    ASSERT_TRUE(backend) << backend.error().message();
    if ((*backend)->engine() != BlockOptions::Engine::IoUring) GTEST_SKIP() << "no io_uring here";
    auto data = test::pattern(8192, 5);
    iovec w{data.data(), data.size()};
    for (uint64_t tag = 1; tag <= 20; ++tag) {
        (*backend)->submit_write(4096 * tag, std::span(&w, 1), tag);
        std::vector<std::pair<uint64_t, int64_t>> done;
        (*backend)->process_completions(
            [&](uint64_t t, int64_t result) { done.emplace_back(t, result); });
        ASSERT_EQ(done.size(), 1u) << "write " << tag << " had not completed";
        EXPECT_EQ(done[0], std::make_pair(tag, int64_t{8192}));
    }
    EXPECT_EQ(image.read(4096 * 20, 8192), data);
    std::vector<uint8_t> in(4096);
    iovec r{in.data(), in.size()};
    (*backend)->submit_read(4096 * 20, std::span(&r, 1), 99);
    EXPECT_EQ(test::run_one(**backend, 99), 4096);
    EXPECT_EQ(in, std::vector<uint8_t>(data.begin(), data.begin() + 4096));
}

}  // namespace
}  // namespace rv
