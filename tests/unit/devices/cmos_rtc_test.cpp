#include "devices/legacy/cmos_rtc.h"

#include <gtest/gtest.h>

#include "support/bus_access.h"
#include "support/manual_clock.h"

namespace rv {
namespace {

using test::ManualClock;
using test::read8;
using test::write8;

// 2026-11-21 18:42:01 UTC, a Saturday.
constexpr int64_t kSaturdayEvening = 1795286521;

constexpr uint8_t kSeconds = 0x00, kMinutes = 0x02, kHours = 0x04, kDayOfWeek = 0x06, kDay = 0x07,
                  kMonth = 0x08, kYear = 0x09, kRegA = 0x0a, kRegB = 0x0b, kRegC = 0x0c,
                  kRegD = 0x0d, kCentury = 0x32;

class CmosRtcTest : public ::testing::Test {
  protected:
    uint8_t cmos(uint8_t index) {
        write8(rtc, 0, index);
        return read8(rtc, 1);
    }
    void set_cmos(uint8_t index, uint8_t value) {
        write8(rtc, 0, index);
        write8(rtc, 1, value);
    }

    ManualClock clock{kSaturdayEvening};
    CmosRtc rtc{clock.function()};
};

TEST_F(CmosRtcTest, DefaultsToBcdAnd24Hour) {
    EXPECT_EQ(cmos(kRegB), 0x02);
    EXPECT_EQ(cmos(kSeconds), 0x01);
    EXPECT_EQ(cmos(kMinutes), 0x42);
    EXPECT_EQ(cmos(kHours), 0x18);
    EXPECT_EQ(cmos(kDayOfWeek), 0x07);  // Saturday (1 = Sunday)
    EXPECT_EQ(cmos(kDay), 0x21);
    EXPECT_EQ(cmos(kMonth), 0x11);
    EXPECT_EQ(cmos(kYear), 0x26);
    EXPECT_EQ(cmos(kCentury), 0x20);
}

TEST_F(CmosRtcTest, BinaryMode) {
    set_cmos(kRegB, 0x06);
    EXPECT_EQ(cmos(kSeconds), 1);
    EXPECT_EQ(cmos(kMinutes), 42);
    EXPECT_EQ(cmos(kHours), 18);
    EXPECT_EQ(cmos(kDayOfWeek), 7);
    EXPECT_EQ(cmos(kDay), 21);
    EXPECT_EQ(cmos(kMonth), 11);
    EXPECT_EQ(cmos(kYear), 26);
    EXPECT_EQ(cmos(kCentury), 20);
}

TEST_F(CmosRtcTest, TwelveHourMode) {
    set_cmos(kRegB, 0x00);          // BCD, 12-hour
    EXPECT_EQ(cmos(kHours), 0x86);  // 6 PM
    set_cmos(kRegB, 0x04);          // binary, 12-hour
    EXPECT_EQ(cmos(kHours), 0x86);
    set_cmos(kRegB, 0x00);
    clock.set(1795221000);  // 00:30: 12 AM
    EXPECT_EQ(cmos(kHours), 0x12);
    clock.set(1795262700);  // 12:05: 12 PM
    EXPECT_EQ(cmos(kHours), 0x92);
}

TEST_F(CmosRtcTest, FollowsTheClock) {
    clock.advance(59);
    EXPECT_EQ(cmos(kSeconds), 0x00);
    EXPECT_EQ(cmos(kMinutes), 0x43);
    clock.advance(6 * 3600);  // past midnight: Sunday the 22nd
    EXPECT_EQ(cmos(kHours), 0x00);
    EXPECT_EQ(cmos(kDay), 0x22);
    EXPECT_EQ(cmos(kDayOfWeek), 0x01);
}

TEST_F(CmosRtcTest, CenturyRollsOver) {
    clock.set(4102444800);  // 2100-01-01 00:00:00, a Friday
    EXPECT_EQ(cmos(kCentury), 0x21);
    EXPECT_EQ(cmos(kYear), 0x00);
    EXPECT_EQ(cmos(kMonth), 0x01);
    EXPECT_EQ(cmos(kDayOfWeek), 0x06);
    clock.set(0);
    EXPECT_EQ(cmos(kCentury), 0x19);
    EXPECT_EQ(cmos(kYear), 0x70);
    EXPECT_EQ(cmos(kDayOfWeek), 0x05);  // Thursday
}

TEST_F(CmosRtcTest, GuestSetTimePersistsAndKeepsTicking) {
    // The Linux mc146818_set_time sequence: SET, write fields, clear SET.
    set_cmos(kRegB, 0x82);
    set_cmos(kCentury, 0x20);
    set_cmos(kYear, 0x01);
    set_cmos(kMonth, 0x02);
    set_cmos(kDay, 0x03);
    set_cmos(kHours, 0x04);
    set_cmos(kMinutes, 0x05);
    set_cmos(kSeconds, 0x06);
    clock.advance(100);  // frozen while SET
    EXPECT_EQ(cmos(kSeconds), 0x06);
    set_cmos(kRegB, 0x02);
    EXPECT_EQ(cmos(kSeconds), 0x06);
    EXPECT_EQ(cmos(kYear), 0x01);
    EXPECT_EQ(cmos(kDayOfWeek), 0x07);  // 2001-02-03 was a Saturday
    clock.advance(10);
    EXPECT_EQ(cmos(kSeconds), 0x16);
    EXPECT_EQ(cmos(kMinutes), 0x05);
    EXPECT_EQ(cmos(kDay), 0x03);
}

TEST_F(CmosRtcTest, SetBitFreezesCurrentTime) {
    set_cmos(kRegB, 0x82);
    clock.advance(30);
    EXPECT_EQ(cmos(kSeconds), 0x01);
    set_cmos(kRegB, 0x02);  // no field written: back to host time
    EXPECT_EQ(cmos(kSeconds), 0x01);
    clock.advance(1);
    EXPECT_EQ(cmos(kSeconds), 0x02);
}

TEST_F(CmosRtcTest, SetClearsUpdateInterruptEnable) {
    set_cmos(kRegB, 0x92);
    EXPECT_EQ(cmos(kRegB), 0x82);
}

TEST_F(CmosRtcTest, WritingOneFieldOfRunningClock) {
    set_cmos(kMinutes, 0x00);
    EXPECT_EQ(cmos(kMinutes), 0x00);
    EXPECT_EQ(cmos(kHours), 0x18);
    clock.advance(120);
    EXPECT_EQ(cmos(kMinutes), 0x02);
}

TEST_F(CmosRtcTest, TwelveHourGuestSetTime) {
    set_cmos(kRegB, 0x80);   // SET, BCD, 12-hour
    set_cmos(kHours, 0x87);  // 7 PM
    set_cmos(kRegB, 0x02);   // back to 24-hour
    EXPECT_EQ(cmos(kHours), 0x19);
    EXPECT_EQ(cmos(kMinutes), 0x42);
}

TEST_F(CmosRtcTest, InvalidGuestTimeIsIgnored) {
    set_cmos(kRegB, 0x82);
    set_cmos(kMonth, 0x13);
    set_cmos(kRegB, 0x02);
    EXPECT_EQ(cmos(kMonth), 0x11);
    set_cmos(kRegB, 0x82);
    set_cmos(kDay, 0x31);  // November has 30 days
    set_cmos(kRegB, 0x02);
    EXPECT_EQ(cmos(kDay), 0x21);
    set_cmos(kSeconds, 0x5a);  // not BCD
    EXPECT_EQ(cmos(kSeconds), 0x01);
}

TEST_F(CmosRtcTest, StatusRegisters) {
    EXPECT_EQ(cmos(kRegA) & 0x80, 0);  // never update-in-progress
    set_cmos(kRegA, 0xa6);
    EXPECT_EQ(cmos(kRegA), 0x26);  // divider and rate stick, UIP does not
    set_cmos(kRegA, 0x20);
    EXPECT_EQ(cmos(kRegA), 0x20);
    EXPECT_EQ(cmos(kRegC), 0x00);
    set_cmos(kRegC, 0xf0);
    EXPECT_EQ(cmos(kRegC), 0x00);
    EXPECT_EQ(cmos(kRegD), 0x80);  // battery good
    set_cmos(kRegD, 0x00);
    EXPECT_EQ(cmos(kRegD), 0x80);
}

TEST_F(CmosRtcTest, NmiMaskBitInIndexIsIgnored) {
    write8(rtc, 0, 0x80 | kMinutes);
    EXPECT_EQ(read8(rtc, 1), 0x42);
}

TEST_F(CmosRtcTest, NvramBytesHoldValues) {
    for (uint8_t index : {0x01, 0x0e, 0x40, 0x7f}) {
        set_cmos(index, static_cast<uint8_t>(index ^ 0xa5));
        EXPECT_EQ(cmos(index), index ^ 0xa5);
    }
}

TEST_F(CmosRtcTest, WordWriteSelectsIndexThenWritesData) {
    test::write16(rtc, 0, 0x5a40);  // outw 0x70: index 0x40, data 0x5a
    EXPECT_EQ(cmos(0x40), 0x5a);
}

TEST_F(CmosRtcTest, MemorySize) {
    constexpr uint64_t kMiB = 1 << 20, kGiB = 1ull << 30;
    rtc.set_memory_size(2 * kGiB, 6 * kGiB);
    const unsigned above_16m = cmos(0x34) | (cmos(0x35) << 8);
    EXPECT_EQ(above_16m, (2048u - 16) * 16);
    const unsigned above_4g = cmos(0x5b) | (cmos(0x5c) << 8) | (cmos(0x5d) << 16);
    EXPECT_EQ(above_4g, 6u * 16384);
    EXPECT_EQ(cmos(0x15) | (cmos(0x16) << 8), 640);
    EXPECT_EQ(cmos(0x17) | (cmos(0x18) << 8), 0xffff);  // capped
    rtc.set_memory_size(8 * kMiB, 0);
    EXPECT_EQ(cmos(0x34), 0);
    EXPECT_EQ(cmos(0x35), 0);
    EXPECT_EQ(cmos(0x30) | (cmos(0x31) << 8), 7 * 1024);
    rtc.set_memory_size(64 * kGiB, 0);  // bogus input still caps
    EXPECT_EQ(cmos(0x34), 0xff);
    EXPECT_EQ(cmos(0x35), 0xff);
}

}  // namespace
}  // namespace rv
