#include "snapshot/state_codec.h"

#include <gtest/gtest.h>

namespace rv::snapshot {
namespace {

TEST(StateCodec, RoundTripsEveryFieldKindLittleEndian) {
    Writer w;
    w.u8(0xab);
    w.boolean(true);
    w.u16(0x1234);
    w.u32(0xdeadbeef);
    w.u64(0x0102030405060708);
    w.i64(-5);
    const std::array<uint8_t, 3> fixed{7, 8, 9};
    w.raw(fixed);
    w.blob(std::vector<uint8_t>{1, 2});
    w.str("com1");
    const auto bytes = w.take();
    EXPECT_EQ(bytes[2], 0x34);  // u16 low byte first
    EXPECT_EQ(bytes[3], 0x12);

    Reader r(bytes, "test");
    EXPECT_EQ(r.u8(), 0xab);
    EXPECT_TRUE(r.boolean());
    EXPECT_EQ(r.u16(), 0x1234);
    EXPECT_EQ(r.u32(), 0xdeadbeefu);
    EXPECT_EQ(r.u64(), 0x0102030405060708u);
    EXPECT_EQ(r.i64(), -5);
    EXPECT_EQ((r.array<3>()), fixed);
    EXPECT_EQ(r.blob(16), (std::vector<uint8_t>{1, 2}));
    EXPECT_EQ(r.str(16), "com1");
    EXPECT_TRUE(r.finish().has_value());
}

TEST(StateCodec, TruncatedInputFailsOnceAndReadsZeros) {
    const std::vector<uint8_t> bytes{1, 2, 3};
    Reader r(bytes, "uart");
    EXPECT_EQ(r.u16(), 0x0201);
    EXPECT_EQ(r.u32(), 0u);  // only one byte left
    EXPECT_EQ(r.u8(), 0);    // sticky: nothing more is read
    const auto done = r.finish();
    ASSERT_FALSE(done.has_value());
    EXPECT_EQ(done.error().kind(), ErrorKind::InvalidInput);
    EXPECT_NE(done.error().message().find("uart state: truncated"), std::string::npos) << done.error().message();
}

TEST(StateCodec, LeftoverBytesAreAnError) {
    const std::vector<uint8_t> bytes{1, 2};
    Reader r(bytes, "rtc");
    r.u8();
    const auto done = r.finish();
    ASSERT_FALSE(done.has_value());
    EXPECT_NE(done.error().message().find("1 bytes left over"), std::string::npos) << done.error().message();
}

TEST(StateCodec, BooleanOtherThanZeroOrOneIsAnError) {
    const std::vector<uint8_t> bytes{2};
    Reader r(bytes, "x");
    r.boolean();
    EXPECT_FALSE(r.finish().has_value());
}

TEST(StateCodec, BlobLongerThanItsLimitOrTheInputIsRefusedWithoutAllocating) {
    Writer w;
    w.u32(0xffffffff);  // claims 4 GiB
    const auto bytes = w.take();
    Reader r(bytes, "x");
    EXPECT_TRUE(r.blob(1u << 30).empty());
    EXPECT_FALSE(r.finish().has_value());

    Writer w2;
    w2.blob(std::vector<uint8_t>(10, 1));
    const auto b2 = w2.take();
    Reader r2(b2, "x");
    EXPECT_TRUE(r2.blob(9).empty());
    EXPECT_FALSE(r2.finish().has_value());
}

TEST(StateCodec, FailKeepsTheFirstError) {
    const std::vector<uint8_t> bytes{};
    Reader r(bytes, "dev");
    r.fail("first");
    r.fail("second");
    EXPECT_EQ(r.finish().error().message(), "dev state: first");
}

}  // namespace
}  // namespace rv::snapshot
