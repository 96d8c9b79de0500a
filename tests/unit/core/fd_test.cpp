#include "base/fd.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace rv {
namespace {

// /proc and sysfs files report a size of 0 (or 4096): read_file reads to EOF.
TEST(ReadFile, ProcFilesWhoseSizeIsZero) {
    auto status = read_file("/proc/self/status");
    ASSERT_TRUE(status) << status.error().message();
    EXPECT_NE(status->find(fmt::format("Pid:\t{}\n", ::getpid())), std::string::npos);
    auto stat = read_file(fmt::format("/proc/self/task/{}/stat", ::gettid()));
    ASSERT_TRUE(stat);
    EXPECT_TRUE(stat->starts_with(std::to_string(::gettid()) + " ("));
}

TEST(ReadFile, RegularFilesWholeAndErrors) {
    char path[] = "/tmp/rv-read-file-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    std::string big(3 * 4096 + 17, 'x');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    std::ofstream(path) << big;
    auto back = read_file(path);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, big);
    std::ofstream(path, std::ios::trunc).flush();
    auto empty = read_file(path);
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->empty());
    ::unlink(path);
    auto missing = read_file(path);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().os_errno(), ENOENT);
    EXPECT_FALSE(read_file("/tmp"));  // a directory
}

}  // namespace
}  // namespace rv
