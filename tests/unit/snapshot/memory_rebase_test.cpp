// A diff memory file laid over its base: the diff's data extents land at
// their offsets, the base's other bytes stay, and files of different sizes
// are refused.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "snapshot/memory_rebase.h"

namespace rv::snapshot {
namespace {

struct TempFile {
    std::string path;
    TempFile() {
        path = "/tmp/rv_rebase_XXXXXX";
        int fd = ::mkstemp(path.data());
        EXPECT_GE(fd, 0);
        ::close(fd);
    }
    ~TempFile() { ::unlink(path.c_str()); }
    void write_at(off_t at, const std::vector<uint8_t>& bytes) const {
        int fd = ::open(path.c_str(), O_WRONLY);
        EXPECT_EQ(::pwrite(fd, bytes.data(), bytes.size(), at), static_cast<ssize_t>(bytes.size()));
        ::close(fd);
    }
    void truncate(off_t size) const { EXPECT_EQ(::truncate(path.c_str(), size), 0); }
    std::vector<uint8_t> read_all(size_t size) const {
        std::vector<uint8_t> out(size);
        int fd = ::open(path.c_str(), O_RDONLY);
        EXPECT_EQ(::pread(fd, out.data(), size, 0), static_cast<ssize_t>(size));
        ::close(fd);
        return out;
    }
};

TEST(MemoryRebase, DiffExtentsLandOnTheBase) {
    constexpr size_t kSize = 1 << 20;
    TempFile base, diff;
    base.write_at(0, std::vector<uint8_t>(kSize, 0x11));
    diff.truncate(kSize);
    diff.write_at(4096, std::vector<uint8_t>(4096, 0x22));
    diff.write_at(512 << 10, std::vector<uint8_t>(8192, 0x00));  // a page written back to zeros
    diff.write_at(kSize - 4096, std::vector<uint8_t>(4096, 0x33));
    auto copied = rebase_memory_file(base.path, diff.path);
    ASSERT_TRUE(copied) << copied.error().message();
    EXPECT_GE(*copied, 4096u * 4);
    EXPECT_LT(*copied, kSize / 2) << "holes are skipped";
    auto got = base.read_all(kSize);
    std::vector<uint8_t> want(kSize, 0x11);
    std::fill(want.begin() + 4096, want.begin() + 8192, 0x22);
    std::fill(want.begin() + (512 << 10), want.begin() + (512 << 10) + 8192, 0x00);
    std::fill(want.end() - 4096, want.end(), 0x33);
    EXPECT_TRUE(got == want);
}

TEST(MemoryRebase, FilesOfDifferentSizesAreRefused) {
    TempFile base, diff;
    base.truncate(1 << 20);
    diff.truncate(2 << 20);
    auto r = rebase_memory_file(base.path, diff.path);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidInput);
    EXPECT_FALSE(rebase_memory_file(base.path, "/nonexistent/diff"));
}

}  // namespace
}  // namespace rv::snapshot
