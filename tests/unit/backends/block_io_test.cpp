// BlockBackend I/O, run against both engines and both cache modes: data
// round trips, O_DIRECT bouncing, flush, discard/zeroes, refusals.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>

#include <cstdlib>
#include <memory>

#include "block_test_util.h"

namespace rv {
namespace {

using test::CompletionWatch;
using test::pattern;
using test::run_one;
using test::TempImage;
using test::wait_completions;

struct Mode {
    BlockOptions::Engine engine;
    BlockOptions::Cache cache;
};

std::string mode_name(const testing::TestParamInfo<Mode>& info) {
    return std::string(info.param.engine == BlockOptions::Engine::IoUring ? "Uring" : "Sync") +
           (info.param.cache == BlockOptions::Cache::None ? "Direct" : "Writeback");
}

class BlockIo : public testing::TestWithParam<Mode> {
  protected:
    static constexpr uint64_t kSize = 1 << 20;

    std::unique_ptr<BlockBackend> open(bool read_only = false) {
        BlockOptions options{read_only, GetParam().cache, GetParam().engine};
        auto backend = BlockBackend::open(m_image.path(), options);
        if (!backend) {
            m_skip = backend.error().message();
            return nullptr;
        }
        return std::move(*backend);
    }

    TempImage m_image{kSize};
    std::string m_skip;
};

#define OPEN_OR_SKIP(var, ...)    \
    auto var = open(__VA_ARGS__); \
    if (!var) GTEST_SKIP() << "cannot open (O_DIRECT on /tmp?): " << m_skip

// Page-aligned host buffer, as guest RAM is.
struct AlignedBuf {
    explicit AlignedBuf(size_t n)
        : size(n), p(static_cast<uint8_t*>(std::aligned_alloc(4096, (n + 4095) & ~size_t{4095}))) {}
    ~AlignedBuf() { std::free(p); }
    size_t size;
    uint8_t* p;
};

TEST_P(BlockIo, WriteThenReadRoundTrip) {
    OPEN_OR_SKIP(backend);
    AlignedBuf out(8192), in(8192);
    auto data = pattern(8192, 3);
    std::memcpy(out.p, data.data(), data.size());
    iovec w[] = {{out.p, 4096}, {out.p + 4096, 4096}};
    backend->submit_write(65536, w, 7);
    EXPECT_EQ(run_one(*backend, 7), 8192);
    EXPECT_EQ(m_image.read(65536, 8192), data);

    std::memset(in.p, 0, 8192);
    iovec r[] = {{in.p, 512}, {in.p + 512, 7680}};
    backend->submit_read(65536, r, 8);
    EXPECT_EQ(run_one(*backend, 8), 8192);
    EXPECT_EQ(std::vector<uint8_t>(in.p, in.p + 8192), data);
    EXPECT_EQ(backend->pending(), 0u);
}

// Guest buffers need not be 512-aligned; with O_DIRECT they are bounced.
TEST_P(BlockIo, UnalignedBuffers) {
    OPEN_OR_SKIP(backend);
    AlignedBuf out(8192), in(8192);
    auto data = pattern(1024, 9);
    std::memcpy(out.p + 3, data.data(), 100);
    std::memcpy(out.p + 4000, data.data() + 100, 924);
    iovec w[] = {{out.p + 3, 100}, {out.p + 4000, 924}};
    backend->submit_write(512, w, 1);
    EXPECT_EQ(run_one(*backend, 1), 1024);
    EXPECT_EQ(m_image.read(512, 1024), data);

    iovec r[] = {{in.p + 1, 1000}, {in.p + 2001, 24}};
    backend->submit_read(512, r, 2);
    EXPECT_EQ(run_one(*backend, 2), 1024);
    std::vector<uint8_t> got(in.p + 1, in.p + 1001);
    got.insert(got.end(), in.p + 2001, in.p + 2025);
    EXPECT_EQ(got, data);
}

TEST_P(BlockIo, DirectIoRejectsUnalignedFileRange) {
    OPEN_OR_SKIP(backend);
    if (GetParam().cache != BlockOptions::Cache::None) GTEST_SKIP() << "writeback allows any range";
    AlignedBuf buf(4096);
    iovec v{buf.p, 100};
    backend->submit_read(0, std::span(&v, 1), 1);
    EXPECT_EQ(run_one(*backend, 1), -EINVAL);
}

TEST_P(BlockIo, ReadPastEndFails) {
    OPEN_OR_SKIP(backend);
    AlignedBuf buf(4096);
    iovec v{buf.p, 4096};
    backend->submit_read(kSize - 512, std::span(&v, 1), 1);
    backend->submit_read(~0ull - 511, std::span(&v, 1), 2);   // offset + len overflows
    backend->submit_read(kSize - 4096, std::span(&v, 1), 3);  // exactly the last 4 KiB
    auto results = wait_completions(*backend, 3);
    EXPECT_EQ(results[1], -EINVAL);
    EXPECT_EQ(results[2], -EINVAL);
    EXPECT_EQ(results[3], 4096);
}

TEST_P(BlockIo, FlushCompletes) {
    OPEN_OR_SKIP(backend);
    AlignedBuf buf(4096);
    std::memset(buf.p, 0xab, 4096);
    iovec v{buf.p, 4096};
    backend->submit_write(0, std::span(&v, 1), 1);
    EXPECT_EQ(run_one(*backend, 1), 4096);
    backend->submit_flush(2);
    EXPECT_EQ(run_one(*backend, 2), 0);
    EXPECT_EQ(m_image.read(0, 4096), std::vector<uint8_t>(4096, 0xab));
}

TEST_P(BlockIo, DiscardAndWriteZeroesReadBackZeroes) {
    OPEN_OR_SKIP(backend);
    m_image.write(0, std::vector<uint8_t>(65536, 0x5a));
    backend->submit_discard(4096, 8192, 1);
    backend->submit_write_zeroes(32768, 4096, 2);
    auto results = wait_completions(*backend, 2);
    EXPECT_EQ(results[1], 0);
    EXPECT_EQ(results[2], 0);
    EXPECT_EQ(m_image.read(4096, 8192), std::vector<uint8_t>(8192, 0));
    EXPECT_EQ(m_image.read(32768, 4096), std::vector<uint8_t>(4096, 0));
    EXPECT_EQ(m_image.read(0, 4096), std::vector<uint8_t>(4096, 0x5a));
    EXPECT_EQ(m_image.read(12288, 4096), std::vector<uint8_t>(4096, 0x5a));
    EXPECT_EQ(m_image.read(36864, 4096), std::vector<uint8_t>(4096, 0x5a));
    struct stat st {};
    ASSERT_EQ(::stat(m_image.path().c_str(), &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), kSize);  // KEEP_SIZE
}

TEST_P(BlockIo, RangeOpsOutsideDiskFail) {
    OPEN_OR_SKIP(backend);
    backend->submit_discard(kSize - 512, 1024, 1);
    backend->submit_write_zeroes(kSize, 512, 2);
    auto results = wait_completions(*backend, 2);
    EXPECT_EQ(results[1], -EINVAL);
    EXPECT_EQ(results[2], -EINVAL);
}

TEST_P(BlockIo, ReadOnlyRefusesWrites) {
    m_image.write(0, std::vector<uint8_t>(512, 0x11));
    OPEN_OR_SKIP(backend, true);
    AlignedBuf buf(4096);
    std::memset(buf.p, 0x22, 4096);
    iovec v{buf.p, 512};
    backend->submit_write(0, std::span(&v, 1), 1);
    backend->submit_discard(0, 512, 2);
    backend->submit_write_zeroes(0, 512, 3);
    backend->submit_read(0, std::span(&v, 1), 4);
    backend->submit_flush(5);
    auto results = wait_completions(*backend, 5);
    EXPECT_EQ(results[1], -EROFS);
    EXPECT_EQ(results[2], -EROFS);
    EXPECT_EQ(results[3], -EROFS);
    EXPECT_EQ(results[4], 512);
    EXPECT_EQ(results[5], 0);
    EXPECT_EQ(m_image.read(0, 512), std::vector<uint8_t>(512, 0x11));
    EXPECT_EQ(std::vector<uint8_t>(buf.p, buf.p + 512), std::vector<uint8_t>(512, 0x11));
}

// More requests than the ring holds: the rest queue and go as slots free.
TEST_P(BlockIo, MoreRequestsThanQueueDepth) {
    OPEN_OR_SKIP(backend);
    constexpr size_t kCount = 300;
    AlignedBuf buf(kCount * 512);
    for (size_t i = 0; i < kCount; ++i) std::memset(buf.p + i * 512, static_cast<int>(i), 512);
    std::vector<iovec> iovs(kCount);
    for (size_t i = 0; i < kCount; ++i) {
        iovs[i] = {buf.p + i * 512, 512};
        backend->submit_write(i * 2048, std::span(&iovs[i], 1), i);
    }
    auto results = wait_completions(*backend, kCount);
    for (size_t i = 0; i < kCount; ++i) {
        ASSERT_EQ(results[i], 512) << i;
        ASSERT_EQ(m_image.read(i * 2048, 1)[0], static_cast<uint8_t>(i)) << i;
    }
}

TEST_P(BlockIo, CompletionFdSignalsAndDrainWaits) {
    OPEN_OR_SKIP(backend);
    AlignedBuf buf(4096);
    iovec v{buf.p, 4096};
    CompletionWatch watch(*backend);
    EXPECT_FALSE(watch.signalled(0));  // nothing yet
    backend->submit_read(0, std::span(&v, 1), 1);
    backend->submit_read(4096, std::span(&v, 1), 2);
    backend->drain();
    EXPECT_TRUE(watch.signalled(0));
    std::vector<uint64_t> tags;
    backend->process_completions([&](uint64_t tag, int64_t result) {
        tags.push_back(tag);
        EXPECT_EQ(result, 4096);
    });
    EXPECT_EQ(tags.size(), 2u);
    EXPECT_EQ(backend->pending(), 0u);
    EXPECT_FALSE(watch.signalled(0));  // nothing completed since
    // The next completion is a new edge, though the eventfd was never read.
    backend->submit_read(8192, std::span(&v, 1), 3);
    EXPECT_TRUE(watch.signalled(5000));
    tags.clear();
    backend->process_completions([&](uint64_t tag, int64_t) { tags.push_back(tag); });
    EXPECT_EQ(tags, std::vector<uint64_t>{3});
}

TEST_P(BlockIo, ZeroLengthAndTooManyIovecs) {
    OPEN_OR_SKIP(backend);
    backend->submit_read(0, {}, 1);
    AlignedBuf buf(4096);
    std::vector<iovec> many(BlockBackend::kMaxIovecs + 1, iovec{buf.p, 0});
    backend->submit_read(0, many, 2);
    auto results = wait_completions(*backend, 2);
    EXPECT_EQ(results[1], 0);
    EXPECT_EQ(results[2], -EINVAL);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, BlockIo,
    testing::Values(Mode{BlockOptions::Engine::Sync, BlockOptions::Cache::Writeback},
                    Mode{BlockOptions::Engine::Sync, BlockOptions::Cache::None},
                    Mode{BlockOptions::Engine::IoUring, BlockOptions::Cache::Writeback},
                    Mode{BlockOptions::Engine::IoUring, BlockOptions::Cache::None}),
    mode_name);

// tmpfs has no FALLOC_FL_ZERO_RANGE: write-zeroes falls back to writing zeroes.
TEST(BlockIoTmpfs, WriteZeroesFallback) {
    for (auto engine : {BlockOptions::Engine::Sync, BlockOptions::Engine::IoUring}) {
        TempImage image(4 << 20, "/dev/shm");
        image.write(0, std::vector<uint8_t>(3 << 20, 0x77));
        auto backend = BlockBackend::open(image.path(), {.engine = engine});
        ASSERT_TRUE(backend) << backend.error().message();
        (*backend)->submit_write_zeroes(512, (2 << 20) + 1024, 1);  // > one 1 MiB zero chunk
        EXPECT_EQ(run_one(**backend, 1), 0);
        EXPECT_EQ(image.read(0, 512), std::vector<uint8_t>(512, 0x77));
        EXPECT_EQ(image.read(512, (2 << 20) + 1024), std::vector<uint8_t>((2 << 20) + 1024, 0));
        EXPECT_EQ(image.read((2 << 20) + 1536, 512), std::vector<uint8_t>(512, 0x77));
    }
}

}  // namespace
}  // namespace rv
