// O_DIRECT bounce buffers: whatever a guest sends (huge requests built from
// aliased pages, many of them at once), the memory the backend allocates to
// bounce them stays under a fixed bound.
#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "block_test_util.h"

namespace rv {
namespace {

using test::pattern;
using test::TempImage;
using test::wait_completions;

uint64_t heap_in_use() {
    struct mallinfo2 mi = ::mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

// The documented bound (kMaxBounceBytes, 8 MiB) plus slack for bookkeeping.
constexpr uint64_t kBoundWithSlack = 12 << 20;
static_assert(BlockBackend::kMaxBounceBytes == 8 << 20);

class BlockBounce : public testing::TestWithParam<BlockOptions::Engine> {};

// 16 writes and 16 reads of 4 MiB each, every one four aliases of the same
// unaligned 1 MiB host buffer, all submitted before any completion is
// delivered: 128 MiB if each were bounced whole.
TEST_P(BlockBounce, MemoryStaysBoundedWhateverTheGuestSends) {
    constexpr uint64_t kReq = 4 << 20, kCount = 16;
    TempImage image(kReq * kCount);
    auto backend = BlockBackend::open(image.path(),
                                      {.cache = BlockOptions::Cache::None, .engine = GetParam()});
    if (!backend) GTEST_SKIP() << "no O_DIRECT here: " << backend.error().message();
    uint8_t* raw = static_cast<uint8_t*>(std::aligned_alloc(4096, (1 << 20) + 4096));
    uint8_t* src = raw + 512 + 8;  // unaligned for O_DIRECT: must be bounced
    auto data = pattern(1 << 20, 0x21);
    std::memcpy(src, data.data(), data.size());
    iovec alias[4];
    for (iovec& v : alias) v = {src, 1 << 20};

    uint64_t before = heap_in_use();
    uint64_t peak = before;
    for (uint64_t i = 0; i < kCount; ++i) {
        (*backend)->submit_write(i * kReq, alias, i);
        peak = std::max(peak, heap_in_use());
        EXPECT_LE((*backend)->bounce_bytes(), BlockBackend::kMaxBounceBytes);
    }
    auto writes = wait_completions(**backend, kCount);
    for (uint64_t i = 0; i < kCount; ++i) {
        ASSERT_EQ(writes[i], static_cast<int64_t>(kReq)) << i;
        (*backend)->submit_read(i * kReq, alias, 100 + i);  // all read into the same buffer
        peak = std::max(peak, heap_in_use());
    }
    auto reads = wait_completions(**backend, kCount);
    for (uint64_t i = 0; i < kCount; ++i) ASSERT_EQ(reads[100 + i], static_cast<int64_t>(kReq));
    EXPECT_LT(peak - before, kBoundWithSlack)
        << "bounce memory grew with the requests: " << ((peak - before) >> 20) << " MiB";
    EXPECT_EQ(std::vector<uint8_t>(src, src + (1 << 20)), data);
    EXPECT_EQ(image.read(kReq * kCount - (1 << 20), 1 << 20), data);
    std::free(raw);
}

std::string engine_name(const testing::TestParamInfo<BlockOptions::Engine>& p) {
    return p.param == BlockOptions::Engine::Sync ? "Sync" : "Uring";
}

INSTANTIATE_TEST_SUITE_P(Engines, BlockBounce,
                         testing::Values(BlockOptions::Engine::Sync, BlockOptions::Engine::IoUring),
                         engine_name);

}  // namespace
}  // namespace rv
