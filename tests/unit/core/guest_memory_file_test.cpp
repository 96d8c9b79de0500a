// Guest memory to and from a snapshot's memory file: write_to lays the
// regions back to back, map_file maps them privately (the guest's writes
// never reach the file, so one file serves many clones), and a file of
// another size is refused.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>

#include "base/fd.h"
#include "memory/guest_memory.h"

namespace rv {
namespace {

constexpr std::array<GuestMemory::RegionSpec, 2> kSpecs{
    {{GuestAddress{0}, 64 << 10}, {GuestAddress{1 << 20}, 128 << 10}}};

Fd memfd() {
    int fd = ::memfd_create("rv-test-memory", MFD_CLOEXEC);
    EXPECT_GE(fd, 0);
    return Fd(fd);
}

TEST(GuestMemoryFile, WriteThenMapGivesTheSameBytesPrivately) {
    auto memory = GuestMemory::create(kSpecs);
    ASSERT_TRUE(memory);
    std::vector<uint8_t> a(4096, 0xA5), b(4096, 0x3C);
    ASSERT_TRUE(memory->write(GuestAddress{0x1000}, a));
    ASSERT_TRUE(memory->write(GuestAddress{(1 << 20) + 0x1F000}, b));  // the second region's last page
    Fd file = memfd();
    auto written = memory->write_to(file.get());
    ASSERT_TRUE(written);
    EXPECT_EQ(*written, 2u * 4096) << "pages of zeros are holes";
    EXPECT_EQ(::lseek(file.get(), 0, SEEK_END), (64 << 10) + (128 << 10));
    struct stat st {};
    ASSERT_EQ(::fstat(file.get(), &st), 0);
    EXPECT_LE(st.st_blocks * 512, 4 * 4096) << "only the pages with data take space";

    auto mapped = GuestMemory::map_file(kSpecs, file.get());
    ASSERT_TRUE(mapped) << mapped.error().message();
    std::vector<uint8_t> got(4096);
    ASSERT_TRUE(mapped->read(GuestAddress{0x1000}, got));
    EXPECT_EQ(got, a);
    ASSERT_TRUE(mapped->read(GuestAddress{(1 << 20) + 0x1F000}, got));
    EXPECT_EQ(got, b);
    ASSERT_TRUE(mapped->read(GuestAddress{0x2000}, got));
    EXPECT_EQ(got, std::vector<uint8_t>(4096, 0));

    // A write to the mapping stays in this VM: the file, and a second
    // mapping of it (a clone), still hold the snapshot's bytes.
    ASSERT_TRUE(mapped->fill(GuestAddress{0x1000}, 0x77, 4096));
    auto clone = GuestMemory::map_file(kSpecs, file.get());
    ASSERT_TRUE(clone);
    ASSERT_TRUE(clone->read(GuestAddress{0x1000}, got));
    EXPECT_EQ(got, a);
    std::vector<uint8_t> in_file(4096);
    ASSERT_EQ(::pread(file.get(), in_file.data(), in_file.size(), 0x1000), 4096);
    EXPECT_EQ(in_file, a);
}

TEST(GuestMemoryFile, AFileOfAnotherSizeIsRefused) {
    auto memory = GuestMemory::create(kSpecs);
    ASSERT_TRUE(memory);
    Fd file = memfd();
    ASSERT_TRUE(memory->write_to(file.get()));
    ASSERT_EQ(::ftruncate(file.get(), (64 << 10) + (128 << 10) - 4096), 0);
    auto mapped = GuestMemory::map_file(kSpecs, file.get());
    ASSERT_FALSE(mapped);
    EXPECT_EQ(mapped.error().kind(), ErrorKind::InvalidInput);
    EXPECT_NE(mapped.error().message().find("memory file holds"), std::string::npos);
    ASSERT_EQ(::ftruncate(file.get(), 1 << 20), 0);
    EXPECT_FALSE(GuestMemory::map_file(kSpecs, file.get()));
}

TEST(GuestMemoryFile, WriteToReplacesWhatTheFileHeld) {
    auto memory = GuestMemory::create(kSpecs);
    ASSERT_TRUE(memory);
    Fd file = memfd();
    ASSERT_EQ(::ftruncate(file.get(), 8 << 20), 0);
    ASSERT_TRUE(memory->write_to(file.get()));
    EXPECT_EQ(::lseek(file.get(), 0, SEEK_END), (64 << 10) + (128 << 10));
}

}  // namespace
}  // namespace rv

namespace rv {
namespace {

std::vector<uint64_t> pages_of(const std::vector<uint64_t>& bits) {
    std::vector<uint64_t> out;
    for (size_t w = 0; w < bits.size(); ++w)
        for (unsigned b = 0; b < 64; ++b)
            if (bits[w] >> b & 1) out.push_back(64 * w + b);
    return out;
}

// Every way the VMM writes guest memory marks the pages it covers, only
// while tracking is on; taking the marks clears them; reads mark nothing.
// create_memfd: the regions live back to back in one memfd, shared both
// ways: what the guest's RAM holds is what the file holds at the region's
// offset, and the memory file written from it matches.
TEST(GuestMemoryMemfd, RamIsTheFileAtEachRegionsOffset) {
    auto memory = GuestMemory::create_memfd(kSpecs);
    ASSERT_TRUE(memory) << memory.error().message();
    ASSERT_GE(memory->fd(), 0);
    EXPECT_EQ(::lseek(memory->fd(), 0, SEEK_END), (64 << 10) + (128 << 10));
    std::vector<uint8_t> a(4096, 0x11), b(4096, 0x22), got(4096);
    ASSERT_TRUE(memory->write(GuestAddress{(1 << 20) + 0x2000}, a));  // region 1, page 2
    ASSERT_EQ(::pread(memory->fd(), got.data(), got.size(), (64 << 10) + 0x2000), 4096);
    EXPECT_EQ(got, a);
    ASSERT_EQ(::pwrite(memory->fd(), b.data(), b.size(), 0x3000), 4096);  // region 0, page 3
    ASSERT_TRUE(memory->read(GuestAddress{0x3000}, got));
    EXPECT_EQ(got, b);
    // Dirty marks and memory files work as with anonymous RAM.
    Fd file = memfd();
    auto written = memory->write_to(file.get());
    ASSERT_TRUE(written);
    EXPECT_EQ(*written, 2u * 4096);
    auto mapped = GuestMemory::map_file(kSpecs, file.get());
    ASSERT_TRUE(mapped);
    ASSERT_TRUE(mapped->read(GuestAddress{(1 << 20) + 0x2000}, got));
    EXPECT_EQ(got, a);
    EXPECT_EQ(GuestMemory::create(kSpecs)->fd(), -1) << "anonymous RAM has no fd";
    // Moving the memory moves the fd with it.
    const int fd = memory->fd();
    GuestMemory moved = std::move(*memory);
    EXPECT_EQ(moved.fd(), fd);
}

TEST(GuestMemoryDirty, EveryWritePathMarksItsPages) {
    auto memory = GuestMemory::create(kSpecs);
    ASSERT_TRUE(memory);
    std::vector<uint8_t> bytes(100, 1);
    ASSERT_TRUE(memory->write(GuestAddress{0x1000}, bytes));
    EXPECT_TRUE(pages_of(memory->take_dirty(0)).empty()) << "tracking is off";

    memory->set_dirty_tracking(true);
    EXPECT_TRUE(memory->dirty_tracking());
    ASSERT_TRUE(memory->write(GuestAddress{0x1FF0}, std::span(bytes).first(32)));  // pages 1 and 2
    ASSERT_TRUE(memory->fill(GuestAddress{0x5000}, 0, 4096));                      // page 5
    ASSERT_TRUE(memory->write_obj(GuestAddress{0x7004}, uint32_t{7}));             // page 7
    ASSERT_TRUE(memory->store_u16(GuestAddress{0x9000}, 3));                       // page 9
    ASSERT_TRUE(memory->host_range(GuestAddress{0xB000}, 0x2000));                 // pages 11, 12
    ASSERT_TRUE(memory->host_range(GuestAddress{(1 << 20) + 0x3000}, 1));          // region 1, page 3
    // Reads leave no mark.
    std::vector<uint8_t> out(64);
    ASSERT_TRUE(memory->read(GuestAddress{0xD000}, out));
    ASSERT_TRUE(memory->load_u16(GuestAddress{0xE000}));
    EXPECT_EQ(pages_of(memory->take_dirty(0)), (std::vector<uint64_t>{1, 2, 5, 7, 9, 11, 12}));
    EXPECT_EQ(pages_of(memory->take_dirty(1)), (std::vector<uint64_t>{3}));
    EXPECT_TRUE(pages_of(memory->take_dirty(0)).empty()) << "taken marks are cleared";
    // A write of a region's last page marks that page and nothing past it.
    ASSERT_TRUE(memory->write(GuestAddress{0xF000}, std::vector<uint8_t>(4096, 2)));
    EXPECT_EQ(pages_of(memory->take_dirty(0)), (std::vector<uint64_t>{15}));
    memory->set_dirty_tracking(false);
    ASSERT_TRUE(memory->write(GuestAddress{0}, bytes));
    EXPECT_TRUE(pages_of(memory->take_dirty(0)).empty());
}

// The iovecs handed to the kernel are not marked when made: a dirty pass
// between that and the kernel's write would copy the old bytes and take the
// mark. Their caller marks them once written, from the host pointers.
TEST(GuestMemoryDirty, IovecsAreMarkedOnlyWhenTheCallerSaysWritten) {
    auto memory = GuestMemory::create(kSpecs);
    ASSERT_TRUE(memory);
    memory->set_dirty_tracking(true);
    std::vector<iovec> iov;
    ASSERT_TRUE(memory->append_iovecs(GuestAddress{0x2FF0}, 0x20, iov));  // pages 2 and 3
    ASSERT_TRUE(memory->append_iovecs(GuestAddress{(1 << 20) + 0x4000}, 0x1000, iov));
    ASSERT_EQ(iov.size(), 2u);
    EXPECT_TRUE(pages_of(memory->take_dirty(0)).empty());
    EXPECT_TRUE(pages_of(memory->take_dirty(1)).empty());
    memory->mark_written(iov);
    EXPECT_EQ(pages_of(memory->take_dirty(0)), (std::vector<uint64_t>{2, 3}));
    EXPECT_EQ(pages_of(memory->take_dirty(1)), (std::vector<uint64_t>{4}));
    // A pointer outside RAM is ignored; so is everything while tracking is off.
    uint8_t outside[16];
    const iovec stray{outside, sizeof(outside)};
    memory->mark_written(std::span(&stray, 1));
    EXPECT_TRUE(pages_of(memory->take_dirty(0)).empty());
    memory->set_dirty_tracking(false);
    memory->mark_written(iov);
    memory->set_dirty_tracking(true);
    EXPECT_TRUE(pages_of(memory->take_dirty(0)).empty());
}

}  // namespace
}  // namespace rv
