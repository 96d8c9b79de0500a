#include "snapshot/snapshot_file.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include <gtest/gtest.h>

#include "snapshot/state_codec.h"

namespace rv::snapshot {
namespace {

std::span<const uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

SnapshotFile sample() {
    SnapshotFile f;
    EXPECT_TRUE(f.add("uart:com1", 1, {1, 2, 3}).has_value());
    EXPECT_TRUE(f.add("virtio-blk:rootfs", 7, {}).has_value());
    EXPECT_TRUE(f.add("vm", 2, std::vector<uint8_t>(1000, 0x5a)).has_value());
    return f;
}

// A file with the given body and a correct checksum, for the checks that
// come after the checksum.
std::vector<uint8_t> sealed(Writer body) {
    body.u64(crc64(body.bytes()));
    return body.take();
}

Writer header(uint32_t count) {
    Writer w;
    w.raw(SnapshotFile::kMagic);
    w.u32(SnapshotFile::kFormatVersion);
    w.u32(count);
    return w;
}

std::string message_of(const Result<SnapshotFile>& r) { return r ? "" : r.error().message(); }

TEST(SnapshotFile, Crc64IsCrc64Xz) {
    EXPECT_EQ(crc64(as_bytes("123456789")), 0x995dc9bbdf1939faULL);
    EXPECT_EQ(crc64({}), 0u);
}

TEST(SnapshotFile, EncodeParseRoundTrips) {
    const SnapshotFile f = sample();
    const auto bytes = f.encode();
    const auto parsed = SnapshotFile::parse(bytes);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
    EXPECT_EQ(*parsed, f);
    ASSERT_NE(parsed->find("vm"), nullptr);
    EXPECT_EQ(parsed->find("vm")->version, 2u);
    EXPECT_EQ(parsed->find("nope"), nullptr);
}

TEST(SnapshotFile, AddRefusesBadAndDuplicateIds) {
    SnapshotFile f;
    EXPECT_FALSE(f.add("", 1, {}).has_value());
    EXPECT_FALSE(f.add("has space", 1, {}).has_value());
    EXPECT_FALSE(f.add(std::string(SnapshotFile::kMaxIdLength + 1, 'a'), 1, {}).has_value());
    EXPECT_TRUE(f.add("a", 1, {}).has_value());
    EXPECT_FALSE(f.add("a", 2, {}).has_value());
}

TEST(SnapshotFile, EveryTruncationIsRefused) {
    const auto bytes = sample().encode();
    for (size_t len = 0; len < bytes.size(); ++len) {
        const auto r = SnapshotFile::parse(std::span(bytes).first(len));
        ASSERT_FALSE(r.has_value()) << "accepted a file cut to " << len << " of " << bytes.size() << " bytes";
        EXPECT_EQ(r.error().kind(), ErrorKind::InvalidInput);
    }
}

TEST(SnapshotFile, EveryFlippedBitIsRefused) {
    const auto good = sample().encode();
    for (size_t i = 0; i < good.size(); ++i) {
        for (int bit = 0; bit < 8; bit += 3) {
            auto bytes = good;
            bytes[i] ^= static_cast<uint8_t>(1u << bit);
            ASSERT_FALSE(SnapshotFile::parse(bytes).has_value()) << "byte " << i << " bit " << bit;
        }
    }
}

TEST(SnapshotFile, WrongMagicAndOtherVersionSayWhich) {
    auto bytes = sample().encode();
    bytes[0] = 'X';
    EXPECT_NE(message_of(SnapshotFile::parse(bytes)).find("bad magic"), std::string::npos);

    Writer w;
    w.raw(SnapshotFile::kMagic);
    w.u32(SnapshotFile::kFormatVersion + 1);
    w.u32(0);
    const auto other = sealed(std::move(w));
    EXPECT_NE(message_of(SnapshotFile::parse(other)).find("format version 2; this ringvisor reads version 1"),
              std::string::npos)
        << message_of(SnapshotFile::parse(other));
}

TEST(SnapshotFile, ChecksumMismatchSaysCorrupt) {
    auto bytes = sample().encode();
    bytes[20] ^= 0xff;
    EXPECT_NE(message_of(SnapshotFile::parse(bytes)).find("checksum mismatch"), std::string::npos);
}

TEST(SnapshotFile, StructuralErrorsBehindAValidChecksumAreRefused) {
    {  // a section longer than what follows
        Writer w = header(1);
        w.u16(1);
        w.u8('a');
        w.u32(1);
        w.u64(1000);
        EXPECT_NE(message_of(SnapshotFile::parse(sealed(std::move(w)))).find("only 0 left"), std::string::npos);
    }
    {  // a duplicate id
        Writer w = header(2);
        for (int i = 0; i < 2; ++i) {
            w.u16(1);
            w.u8('a');
            w.u32(1);
            w.u64(0);
        }
        EXPECT_NE(message_of(SnapshotFile::parse(sealed(std::move(w)))).find("appears twice"), std::string::npos);
    }
    {  // an id that is not printable, and one of length zero
        Writer w = header(1);
        w.u16(1);
        w.u8('\n');
        w.u32(1);
        w.u64(0);
        EXPECT_NE(message_of(SnapshotFile::parse(sealed(std::move(w)))).find("printable"), std::string::npos);
        Writer z = header(1);
        z.u16(0);
        EXPECT_NE(message_of(SnapshotFile::parse(sealed(std::move(z)))).find("id length 0"), std::string::npos);
    }
    {  // more sections claimed than present, too many, and bytes after the last
        EXPECT_NE(message_of(SnapshotFile::parse(sealed(header(1)))).find("truncated"), std::string::npos);
        EXPECT_NE(message_of(SnapshotFile::parse(sealed(header(SnapshotFile::kMaxSections + 1)))).find("sections"),
                  std::string::npos);
        Writer w = header(0);
        w.u8(0);
        EXPECT_NE(message_of(SnapshotFile::parse(sealed(std::move(w)))).find("left over"), std::string::npos);
    }
}

class SnapshotFileOnDisk : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/rv-snapshot-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        m_dir = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }
    std::string m_dir;
};

TEST_F(SnapshotFileOnDisk, WriteThenReadGivesTheSameFileAndLeavesNoTemporary) {
    const std::string path = m_dir + "/vm.snap";
    const SnapshotFile f = sample();
    ASSERT_TRUE(f.write(path).has_value());
    const auto back = SnapshotFile::read(path);
    ASSERT_TRUE(back.has_value()) << back.error().message();
    EXPECT_EQ(*back, f);
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
    // Overwriting replaces it whole.
    SnapshotFile g;
    ASSERT_TRUE(g.add("only", 3, {9}).has_value());
    ASSERT_TRUE(g.write(path).has_value());
    EXPECT_EQ(*SnapshotFile::read(path), g);
}

TEST_F(SnapshotFileOnDisk, MissingOrTruncatedFileIsAnInputErrorNamingIt) {
    const auto missing = SnapshotFile::read(m_dir + "/absent.snap");
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error().kind(), ErrorKind::InvalidInput);

    const std::string path = m_dir + "/cut.snap";
    const auto bytes = sample().encode();
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), 40);
    const auto cut = SnapshotFile::read(path);
    ASSERT_FALSE(cut.has_value());
    EXPECT_EQ(cut.error().kind(), ErrorKind::InvalidInput);
    EXPECT_NE(cut.error().message().find(path), std::string::npos) << cut.error().message();
}

TEST_F(SnapshotFileOnDisk, UnwritableDirectoryIsAnErrorAndLeavesNothing) {
    const auto r = sample().write(m_dir + "/no/such/dir/vm.snap");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidInput);
}

}  // namespace
}  // namespace rv::snapshot
