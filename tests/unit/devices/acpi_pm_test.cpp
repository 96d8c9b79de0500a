#include "devices/legacy/acpi_pm.h"

#include <gtest/gtest.h>

#include "support/bus_access.h"
#include "support/recording_irq_line.h"

namespace rv {
namespace {

using test::read16;
using test::read32;
using test::read8;
using test::write16;
using test::write32;
using test::write8;

constexpr uint64_t kSts = 0, kEn = 2, kCnt = 4;
constexpr uint16_t kSlpEn = 1 << 13;
constexpr uint16_t slp_typ(unsigned type) {
    return static_cast<uint16_t>(type << 10);
}

class AcpiPmTest : public ::testing::Test {
  protected:
    int poweroffs = 0;
    std::shared_ptr<test::RecordingIrqLine> sci = std::make_shared<test::RecordingIrqLine>();
    AcpiPmDevice pm{[this] { ++poweroffs; }, sci};
};

TEST_F(AcpiPmTest, SciEnabledAtReset) {
    EXPECT_EQ(read16(pm, kCnt), 0x0001);
    write16(pm, kCnt, 0x0000);  // the machine cannot leave ACPI mode
    EXPECT_EQ(read16(pm, kCnt) & 1, 1);
    EXPECT_EQ(read16(pm, kSts), 0);
    EXPECT_EQ(read16(pm, kEn), 0);
}

TEST_F(AcpiPmTest, PowerOffOnS5WithSleepEnable) {
    write16(pm, kCnt, slp_typ(5) | kSlpEn | 1);
    EXPECT_EQ(poweroffs, 1);
    EXPECT_EQ(read16(pm, kCnt) & kSlpEn, 0);  // SLP_EN is write-only
    EXPECT_EQ(read16(pm, kCnt) & slp_typ(7), slp_typ(5));
}

TEST_F(AcpiPmTest, SleepTypeAloneDoesNothingUntilSleepEnable) {
    // ACPICA writes SLP_TYP first, then SLP_TYP | SLP_EN.
    write16(pm, kCnt, slp_typ(5));
    EXPECT_EQ(poweroffs, 0);
    write8(pm, kCnt + 1, static_cast<uint8_t>((slp_typ(5) | kSlpEn) >> 8));
    EXPECT_EQ(poweroffs, 1);
}

TEST_F(AcpiPmTest, SleepEnableUsesStoredSleepType) {
    write16(pm, kCnt, slp_typ(5));
    write16(pm, kCnt, kSlpEn);  // clears SLP_TYP in the same write: S0
    EXPECT_EQ(poweroffs, 0);
}

TEST_F(AcpiPmTest, OtherSleepStatesWakeImmediately) {
    for (unsigned type : {0u, 1u, 3u, 4u, 6u, 7u}) {
        write16(pm, kCnt, slp_typ(type) | kSlpEn);
        EXPECT_EQ(poweroffs, 0) << "SLP_TYP " << type;
        EXPECT_EQ(read16(pm, kSts) & 0x8000, 0x8000);  // WAK_STS
        write16(pm, kSts, 0x8000);                     // write 1 to clear
        EXPECT_EQ(read16(pm, kSts), 0);
    }
}

TEST_F(AcpiPmTest, DwordWriteAcrossControlBlock) {
    write32(pm, kCnt, slp_typ(5) | kSlpEn);
    EXPECT_EQ(poweroffs, 1);
    EXPECT_EQ(read16(pm, 6), 0);  // unused bytes
}

TEST_F(AcpiPmTest, StatusIsWriteOneToClear) {
    pm.press_power_button();
    write16(pm, kSts, 0x0000);
    EXPECT_EQ(read16(pm, kSts), 0x0100);
    write8(pm, kSts, 0xff);  // low byte only: bit 8 untouched
    EXPECT_EQ(read16(pm, kSts), 0x0100);
    write8(pm, kSts + 1, 0x01);
    EXPECT_EQ(read16(pm, kSts), 0x0000);
}

TEST_F(AcpiPmTest, EnableRegisterByteAndWordAccess) {
    write8(pm, kEn, 0x21);
    write8(pm, kEn + 1, 0x01);
    EXPECT_EQ(read16(pm, kEn), 0x0121);
    EXPECT_EQ(read8(pm, kEn + 1), 0x01);
    // A dword at the event block writes STS (W1C) and EN together.
    pm.press_power_button();
    write32(pm, kSts, 0x0000'0100);
    EXPECT_EQ(read32(pm, kSts), 0x0000'0000u);
    write32(pm, kSts, 0x0100'0000);
    EXPECT_EQ(read32(pm, kSts), 0x0100'0000u);
}

TEST_F(AcpiPmTest, PowerButtonRaisesSciOnlyWhenEnabled) {
    pm.press_power_button();
    EXPECT_FALSE(sci->level());
    write16(pm, kEn, 0x0100);  // PWRBTN_EN
    EXPECT_TRUE(sci->level());
    write16(pm, kSts, 0x0100);  // the guest acknowledges
    EXPECT_FALSE(sci->level());
    EXPECT_EQ(poweroffs, 0);
}

TEST_F(AcpiPmTest, WorksWithoutSciLine) {
    int count = 0;
    AcpiPmDevice bare([&] { ++count; });
    write16(bare, kEn, 0x0100);
    bare.press_power_button();
    EXPECT_EQ(read16(bare, kSts), 0x0100);
    write16(bare, kCnt, slp_typ(5) | kSlpEn);
    EXPECT_EQ(count, 1);
}

TEST_F(AcpiPmTest, WholeBlockRead) {
    write16(pm, kEn, 0x0100);
    uint8_t bytes[8] = {};
    pm.read(0, bytes);
    const uint8_t expected[8] = {0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00};
    EXPECT_TRUE(std::equal(std::begin(bytes), std::end(bytes), std::begin(expected)));
}

}  // namespace
}  // namespace rv
