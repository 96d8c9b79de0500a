// cache=none on a host disk with 4 KiB logical sectors (min_direct_alignment
// = 4096 stands in for one): requests in 512-byte sectors are bounced (reads)
// or read-modify-written (writes) so a sector-based device such as the IDE
// disk still works; concurrent writes into one 4 KiB block must not lose
// each other's bytes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "block_test_util.h"

namespace rv {
namespace {

using test::pattern;
using test::run_one;
using test::TempImage;
using test::wait_completions;

constexpr uint64_t kAlign = 4096;

class Block4k : public testing::TestWithParam<BlockOptions::Engine> {
  protected:
    static constexpr uint64_t kSize = 4 << 20;

    void SetUp() override {
        m_image.write(0, pattern(kSize, 0x40));  // known bytes around every write
        BlockOptions options{.cache = BlockOptions::Cache::None,
                             .engine = GetParam(),
                             .min_direct_alignment = kAlign};
        auto backend = BlockBackend::open(m_image.path(), options);
        if (!backend) GTEST_SKIP() << "no O_DIRECT here: " << backend.error().message();
        m_backend = std::move(*backend);
        ASSERT_EQ(m_backend->alignment(), kAlign);
    }

    // The image as the test expects it: the initial pattern with `data` at `offset`.
    void expect_image(uint64_t offset, const std::vector<uint8_t>& data) {
        auto want = pattern(kSize, 0x40);
        std::copy(data.begin(), data.end(), want.begin() + static_cast<ptrdiff_t>(offset));
        EXPECT_EQ(test::first_difference(m_image.read(0, kSize), want), std::string::npos)
            << "the image differs from the expected bytes at this offset";
    }

    TempImage m_image{kSize};
    std::unique_ptr<BlockBackend> m_backend;
};

// Host memory aligned as guest RAM is (aligned_alloc wants whole blocks).
struct Buf {
    explicit Buf(size_t n)
        : p(static_cast<uint8_t*>(std::aligned_alloc(kAlign, (n + kAlign - 1) & ~(kAlign - 1)))) {}
    ~Buf() { std::free(p); }
    uint8_t* p;
};

TEST_P(Block4k, SectorReadsOfAFourKBlock) {
    auto file = pattern(kSize, 0x40);
    Buf buf(8192);
    // One sector inside a block; a range across a block boundary; the last sector.
    struct Case {
        uint64_t offset, len;
    } cases[] = {{512, 512}, {3584, 1024}, {kSize - 512, 512}, {4096 + 1536, 6144}};
    uint64_t tag = 0;
    for (const Case& c : cases) {
        std::memset(buf.p, 0xee, 8192);
        iovec v{buf.p, c.len};
        m_backend->submit_read(c.offset, std::span(&v, 1), ++tag);
        ASSERT_EQ(run_one(*m_backend, tag), static_cast<int64_t>(c.len)) << c.offset;
        ASSERT_EQ(std::vector<uint8_t>(buf.p, buf.p + c.len),
                  std::vector<uint8_t>(file.begin() + c.offset, file.begin() + c.offset + c.len))
            << c.offset;
    }
}

TEST_P(Block4k, SectorWritesKeepTheRestOfTheBlock) {
    Buf buf(8192);
    auto data = pattern(1024, 0x99);
    std::memcpy(buf.p, data.data(), data.size());
    iovec v{buf.p, 1024};
    m_backend->submit_write(3584, std::span(&v, 1), 1);  // last sector of block 0, first of 1
    EXPECT_EQ(run_one(*m_backend, 1), 1024);
    expect_image(3584, data);
}

// Larger than one bounce buffer, unaligned at both ends and in memory.
TEST_P(Block4k, LargeUnalignedWriteAndRead) {
    constexpr uint64_t kLen = (1 << 20) + 3 * 512;
    Buf out(kLen + 4096), in(kLen + 4096);
    auto data = pattern(kLen, 0x17);
    std::memcpy(out.p + 8, data.data(), kLen);
    iovec w[] = {{out.p + 8, 1000}, {out.p + 1008, kLen - 1000}};
    m_backend->submit_write(1536, w, 1);
    EXPECT_EQ(run_one(*m_backend, 1), static_cast<int64_t>(kLen));
    expect_image(1536, data);

    iovec r[] = {{in.p + 3, kLen - 24}, {in.p + kLen + 100, 24}};
    m_backend->submit_read(1536, r, 2);
    EXPECT_EQ(run_one(*m_backend, 2), static_cast<int64_t>(kLen));
    std::vector<uint8_t> got(in.p + 3, in.p + 3 + kLen - 24);
    got.insert(got.end(), in.p + kLen + 100, in.p + kLen + 124);
    EXPECT_EQ(test::first_difference(got, data), std::string::npos);
}

// Eight single-sector writes into one 4 KiB block, all submitted before any
// completes: each is a read-modify-write of the whole block, so without
// serialisation the last one writes back the block as it read it and the
// others' sectors are lost. (The sync engine interleaves them that way
// deterministically: every read runs at submit, every write at completion.)
TEST_P(Block4k, ConcurrentWritesIntoOneBlockAllLand) {
    Buf buf(4096);
    auto data = pattern(4096, 0x5c);
    std::memcpy(buf.p, data.data(), 4096);
    iovec v[8];
    for (uint64_t i = 0; i < 8; ++i) {
        v[i] = {buf.p + 512 * i, 512};
        m_backend->submit_write(8192 + 512 * i, std::span(&v[i], 1), i);
    }
    auto results = wait_completions(*m_backend, 8);
    for (uint64_t i = 0; i < 8; ++i) EXPECT_EQ(results[i], 512) << i;
    expect_image(8192, data);
}

// A discard of one sector and a write of its neighbour in the same 4 KiB
// block: the write's read-modify-write must not bring the discarded bytes back.
TEST_P(Block4k, DiscardOfPartOfABlockIsNotUndoneByAWrite) {
    Buf buf(4096);
    auto data = pattern(512, 0x77);
    std::memcpy(buf.p, data.data(), 512);
    iovec v{buf.p, 512};
    m_backend->submit_write(16384, std::span(&v, 1), 1);  // sector 0 of the block
    m_backend->submit_discard(16384 + 512, 512, 2);       // sector 1
    auto results = wait_completions(*m_backend, 2);
    EXPECT_EQ(results[1], 512);
    EXPECT_EQ(results[2], 0);
    auto want = data;
    want.resize(1024, 0);
    expect_image(16384, want);
}

TEST_P(Block4k, StillRejectsPartialSectors) {
    Buf buf(4096);
    iovec v{buf.p, 100};
    m_backend->submit_read(0, std::span(&v, 1), 1);
    iovec s{buf.p, 512};
    m_backend->submit_write(100, std::span(&s, 1), 2);
    auto results = wait_completions(*m_backend, 2);
    EXPECT_EQ(results[1], -EINVAL);
    EXPECT_EQ(results[2], -EINVAL);
}

std::string engine_name(const testing::TestParamInfo<BlockOptions::Engine>& p) {
    return p.param == BlockOptions::Engine::Sync ? "Sync" : "Uring";
}

// An image whose size is not a multiple of the host block: its last, partial
// block reads fine (zeroes past the end never reach the caller), but a write
// there would have to grow the file and is refused.
TEST(Block4kTail, ImageSizeNotAMultipleOfTheBlock) {
    for (auto engine : {BlockOptions::Engine::Sync, BlockOptions::Engine::IoUring}) {
        constexpr uint64_t kSize = (64 << 10) + 1024;
        TempImage image(kSize);
        image.write(0, pattern(kSize, 0x13));
        auto backend = BlockBackend::open(
            image.path(),
            {.cache = BlockOptions::Cache::None, .engine = engine, .min_direct_alignment = kAlign});
        if (!backend) GTEST_SKIP() << "no O_DIRECT here: " << backend.error().message();
        Buf buf(8192);
        iovec last{buf.p, 1024};
        (*backend)->submit_read(kSize - 1024, std::span(&last, 1), 1);
        iovec across{buf.p + 4096, 2048};
        (*backend)->submit_read(kSize - 2048, std::span(&across, 1), 2);
        iovec sector{buf.p, 512};
        (*backend)->submit_write(kSize - 512, std::span(&sector, 1), 3);
        auto results = wait_completions(**backend, 3);
        EXPECT_EQ(results[1], 1024);
        EXPECT_EQ(results[2], 2048);
        EXPECT_EQ(results[3], -EINVAL);
        auto file = pattern(kSize, 0x13);
        EXPECT_EQ(std::vector<uint8_t>(buf.p, buf.p + 1024),
                  std::vector<uint8_t>(file.end() - 1024, file.end()));
        EXPECT_EQ(std::vector<uint8_t>(buf.p + 4096, buf.p + 6144),
                  std::vector<uint8_t>(file.end() - 2048, file.end()));
        EXPECT_EQ(image.read(0, kSize), file);
    }
}

INSTANTIATE_TEST_SUITE_P(Engines, Block4k,
                         testing::Values(BlockOptions::Engine::Sync, BlockOptions::Engine::IoUring),
                         engine_name);

}  // namespace
}  // namespace rv
