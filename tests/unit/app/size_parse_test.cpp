#include "app/size_parse.h"

#include <gtest/gtest.h>

namespace rv {
namespace {

TEST(ParseMemorySize, UnitsArePowersOf1024AndDefaultIsMiB) {
    EXPECT_EQ(parse_memory_size("512").value(), 512ull << 20);
    EXPECT_EQ(parse_memory_size("512M").value(), 512ull << 20);
    EXPECT_EQ(parse_memory_size("512MiB").value(), 512ull << 20);
    EXPECT_EQ(parse_memory_size("2G").value(), 2ull << 30);
    EXPECT_EQ(parse_memory_size("2gib").value(), 2ull << 30);
    EXPECT_EQ(parse_memory_size("65536K").value(), 64ull << 20);
    EXPECT_EQ(parse_memory_size("1T").value(), 1ull << 40);
}

TEST(ParseMemorySize, RejectsGarbage) {
    for (const char* bad : {"", "M", "-1", "12Q", "1.5G", "abc", "0x10"}) {
        auto r = parse_memory_size(bad);
        EXPECT_FALSE(r) << bad;
        if (!r) {
            EXPECT_NE(r.error().message().find("memory size"), std::string::npos);
        }
    }
}

TEST(ParseMemorySize, RejectsOverflow) {
    EXPECT_FALSE(parse_memory_size("99999999999999999999"));
    EXPECT_FALSE(parse_memory_size("20000000000T"));
}

}  // namespace
}  // namespace rv
