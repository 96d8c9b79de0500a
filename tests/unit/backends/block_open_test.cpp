// BlockBackend::open: the errors a user sees for bad images, and the
// engine fallback; BlockBackend::reopen.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <thread>

#include "block_test_util.h"

namespace rv {
namespace {

using test::TempImage;

std::string open_error(const std::string& path, BlockOptions options = {}) {
    auto backend = BlockBackend::open(path, options);
    if (backend) return "";
    return backend.error().message();
}

TEST(BlockOpen, MissingFile) {
    EXPECT_NE(open_error("/tmp/rv_block_does_not_exist").find("no such file"), std::string::npos);
}

TEST(BlockOpen, Directory) {
    EXPECT_NE(open_error("/tmp", {.read_only = true}).find("is a directory"), std::string::npos);
    EXPECT_NE(open_error("/tmp").find("is a directory"), std::string::npos);
}

TEST(BlockOpen, SizeNotMultipleOf512) {
    TempImage image(1000);
    EXPECT_NE(open_error(image.path()).find("not a multiple of 512"), std::string::npos);
}

TEST(BlockOpen, NotARegularFile) {
    EXPECT_NE(open_error("/dev/null", {.read_only = true}).find("not a regular file"),
              std::string::npos);
}

TEST(BlockOpen, ReportsSizeAndMode) {
    TempImage image(1 << 20);
    auto backend = BlockBackend::open(image.path(), {.read_only = true});
    ASSERT_TRUE(backend) << backend.error().message();
    EXPECT_EQ((*backend)->size(), 1u << 20);
    EXPECT_EQ((*backend)->sectors(), 2048u);
    EXPECT_TRUE((*backend)->read_only());
    EXPECT_EQ((*backend)->alignment(), 1u);  // cache=writeback
}

TEST(BlockOpen, DirectIoOnTmpfsSuggestsWriteback) {
    TempImage image(4096, "/dev/shm");
    auto backend = BlockBackend::open(image.path(), {.cache = BlockOptions::Cache::None});
    if (backend) GTEST_SKIP() << "/dev/shm accepts O_DIRECT on this kernel";
    EXPECT_NE(backend.error().message().find("cache=writeback"), std::string::npos)
        << backend.error().message();
}

// Without CAP_DAC_OVERRIDE (tests usually run as root) a 0444 image cannot
// be opened read-write. Capabilities are per thread, so drop them in one.
TEST(BlockOpen, NotWritable) {
    TempImage image(4096);
    ASSERT_EQ(::chmod(image.path().c_str(), 0444), 0);
    std::string error;
    std::thread([&] {
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2] = {};
        if (::syscall(SYS_capget, &header, data) == 0) {
            for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER}) {
                data[cap / 32].effective &= ~(1u << (cap % 32));
            }
            ::syscall(SYS_capset, &header, data);
        }
        if (::geteuid() == 0) {
            // Root also owns the file; make it someone else's view by
            // dropping to an unprivileged fsuid for this thread only.
            ::syscall(SYS_setfsuid, 65534);
        }
        error = open_error(image.path());
    }).join();
    EXPECT_NE(error.find("cannot open for reading and writing"), std::string::npos) << error;
    EXPECT_NE(error.find("read-only"), std::string::npos) << error;
    // Read-only works.
    EXPECT_EQ(open_error(image.path(), {.read_only = true}), "");
}

TEST(BlockOpen, EngineSelection) {
    TempImage image(4096);
    auto sync = BlockBackend::open(image.path(), {.engine = BlockOptions::Engine::Sync});
    ASSERT_TRUE(sync);
    EXPECT_EQ((*sync)->engine(), BlockOptions::Engine::Sync);
    auto uring = BlockBackend::open(image.path(), {.engine = BlockOptions::Engine::IoUring});
    ASSERT_TRUE(uring);
    // io_uring may be refused (seccomp); then the backend falls back to sync.
    EXPECT_TRUE((*uring)->engine() == BlockOptions::Engine::IoUring ||
                (*uring)->engine() == BlockOptions::Engine::Sync);
    EXPECT_GE((*uring)->completion_fd(), 0);
}

// reopen() serves later requests from whatever the path names now: a
// migration's destination must not read through a file it opened before
// the source stopped. Here the path is replaced by another file of the same
// size; the old descriptor would still read the old one.
TEST(BlockReopen, LaterRequestsReadTheFileThePathNamesNow) {
    for (auto engine : {BlockOptions::Engine::IoUring, BlockOptions::Engine::Sync}) {
        TempImage image(8192);
        image.write(0, test::pattern(4096, 1));
        auto backend = BlockBackend::open(image.path(), {.engine = engine});
        ASSERT_TRUE(backend) << backend.error().message();
        TempImage other(8192);
        other.write(0, test::pattern(4096, 2));
        ASSERT_EQ(::rename(other.path().c_str(), image.path().c_str()), 0);

        std::vector<uint8_t> got(4096);
        iovec iov{got.data(), got.size()};
        (*backend)->submit_read(0, std::span(&iov, 1), 1);
        ASSERT_EQ(test::run_one(**backend, 1), 4096);
        EXPECT_EQ(got, test::pattern(4096, 1)) << "before reopen: the file opened first";

        ASSERT_TRUE((*backend)->reopen());
        (*backend)->submit_read(0, std::span(&iov, 1), 2);
        ASSERT_EQ(test::run_one(**backend, 2), 4096);
        EXPECT_EQ(got, test::pattern(4096, 2)) << "after reopen: the file the path names now";
        // Writes go there too.
        std::vector<uint8_t> data = test::pattern(512, 3);
        iovec w{data.data(), data.size()};
        (*backend)->submit_write(4096, std::span(&w, 1), 3);
        ASSERT_EQ(test::run_one(**backend, 3), 512);
        EXPECT_EQ(image.read(4096, 512), data);
    }
}

TEST(BlockReopen, RefusedWhileBusyOrWhenTheImageChanged) {
    TempImage image(8192);
    auto backend = BlockBackend::open(image.path(), {});
    ASSERT_TRUE(backend);
    std::vector<uint8_t> buf(4096);
    iovec iov{buf.data(), buf.size()};
    (*backend)->submit_read(0, std::span(&iov, 1), 1);
    auto busy = (*backend)->reopen();
    ASSERT_FALSE(busy);
    EXPECT_NE(busy.error().message().find("pending"), std::string::npos);
    ASSERT_EQ(test::run_one(**backend, 1), 4096);

    ASSERT_EQ(::truncate(image.path().c_str(), 16384), 0);
    auto grown = (*backend)->reopen();
    ASSERT_FALSE(grown);
    EXPECT_NE(grown.error().message().find("16384"), std::string::npos) << grown.error().message();

    ASSERT_EQ(::unlink(image.path().c_str()), 0);
    auto gone = (*backend)->reopen();
    ASSERT_FALSE(gone);
    EXPECT_NE(gone.error().message().find("no such file"), std::string::npos);
    // A refused reopen leaves the old file in service.
    (*backend)->submit_read(0, std::span(&iov, 1), 2);
    EXPECT_EQ(test::run_one(**backend, 2), 4096);
}

}  // namespace
}  // namespace rv
