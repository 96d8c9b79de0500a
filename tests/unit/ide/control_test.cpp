// Device control (SRST, nIEN, HOB), INTRQ behaviour, absent devices and the
// PCI function itself.
#include "ide_test_util.h"

namespace rv::test {
namespace {

using namespace ata;

class ControlTest : public IdeTest {};

void expect_signature(IdeTest& t) {
    EXPECT_EQ(t.reg(reg::kCount), 1);
    EXPECT_EQ(t.reg(reg::kLbaLow), 1);
    EXPECT_EQ(t.reg(reg::kLbaMid), 0);
    EXPECT_EQ(t.reg(reg::kLbaHigh), 0);
}

TEST_F(ControlTest, SoftResetLeavesTheAtaSignature) {
    start();
    lba28(0x123456, 9);
    write8(ctl(), 0, kCtlSrst);
    EXPECT_EQ(alt_status(), kStatusBsy);
    write8(ctl(), 0, 0);
    EXPECT_EQ(alt_status(), kStatusReady);
    EXPECT_EQ(error(), kErrDiagPassed);
    expect_signature(*this);
    EXPECT_EQ(irq[0]->rising_edges(), 0u);  // SRST completes without INTRQ
}

TEST_F(ControlTest, SoftResetCancelsACommandInFlight) {
    start();
    images[0]->write(0, pattern(4 * 512, 3));
    lba28(0, 4);
    command(cmd::kReadSectors);
    EXPECT_FALSE(dev->idle());
    write8(ctl(), 0, kCtlSrst);
    write8(ctl(), 0, 0);
    EXPECT_TRUE(dev->idle());
    EXPECT_EQ(alt_status(), kStatusReady);
    EXPECT_EQ(irq[0]->rising_edges(), 0u);
    EXPECT_EQ(read_data(2), std::vector<uint8_t>(2, 0xFF));  // no data phase
    // A new command before the event loop ran: the cancelled read's
    // completion must not be taken for this one's.
    images[0]->write(8 * 512, pattern(512, 50));
    lba28(8, 1);
    command(cmd::kReadSectors);
    EXPECT_EQ(pio_in(1), pattern(512, 50));
    EXPECT_TRUE(dev->idle());
}

TEST_F(ControlTest, SoftResetDuringPioWriteWritesNothingMore) {
    start();
    lba28(0, 2);
    command(cmd::kWriteSectors);
    settle();
    write_data(pattern(256, 1));  // half a sector
    write8(ctl(), 0, kCtlSrst);
    write8(ctl(), 0, 0);
    write_data(pattern(256, 2));
    events.pump();
    EXPECT_EQ(images[0]->read(0, 1024), std::vector<uint8_t>(1024, 0));
}

TEST_F(ControlTest, ExecuteDeviceDiagnostic) {
    start();
    lba28(77, 5);
    command(cmd::kExecuteDiagnostic);
    EXPECT_TRUE(irq[0]->level());
    EXPECT_EQ(error(), kErrDiagPassed);
    expect_signature(*this);
    EXPECT_EQ(status(), kStatusReady);
}

TEST_F(ControlTest, NienSuppressesIntrq) {
    start();
    write8(ctl(), 0, kCtlNien);
    select(0);
    command(cmd::kCheckPowerMode);
    EXPECT_FALSE(irq[0]->level());
    EXPECT_EQ(irq[0]->rising_edges(), 0u);
    // The interrupt is still pending: enabling it asserts the line.
    write8(ctl(), 0, 0);
    EXPECT_TRUE(irq[0]->level());
}

TEST_F(ControlTest, StatusReadClearsIntrqAltStatusDoesNot) {
    start();
    select(0);
    command(cmd::kIdleImmediate);
    EXPECT_TRUE(irq[0]->level());
    EXPECT_EQ(alt_status(), kStatusReady);
    EXPECT_TRUE(irq[0]->level());
    EXPECT_EQ(status(), kStatusReady);
    EXPECT_FALSE(irq[0]->level());
    EXPECT_FALSE(irq[1]->level());  // the other channel's line untouched
}

TEST_F(ControlTest, AbsentSlaveReadsAsNoDevice) {
    start();
    select(1);
    EXPECT_EQ(status(), 0);
    EXPECT_EQ(alt_status(), 0);
    EXPECT_EQ(error(), 0);
    command(cmd::kIdentify);  // ignored
    EXPECT_FALSE(irq[0]->level());
    EXPECT_EQ(read_data(2), std::vector<uint8_t>(2, 0xFF));
    // The master still answers once selected again.
    select(0);
    EXPECT_EQ(status(), kStatusReady);
}

TEST_F(ControlTest, SlaveOnTheSecondaryChannel) {
    start({std::nullopt, std::nullopt, std::nullopt, DriveSpec{}});
    images[3]->write(512, pattern(512, 6));
    // Nothing on the primary channel: everything reads 0, so libata's
    // register read-back presence check fails.
    set_reg(reg::kCount, 0x55);
    EXPECT_EQ(reg(reg::kCount), 0);
    EXPECT_EQ(status(), 0);
    // Secondary: absent master reads 0, the slave works and uses IRQ 15.
    select(0, 1);
    EXPECT_EQ(status(1), 0);
    lba28(1, 1, 1, 1);
    command(cmd::kReadSectors, 1);
    EXPECT_EQ(pio_in(1, 1, 1), pattern(512, 6));
    EXPECT_EQ(irq[1]->rising_edges(), 1u);
    EXPECT_EQ(irq[0]->rising_edges(), 0u);
}

TEST_F(ControlTest, HobReadsThePreviousBytes) {
    start();
    lba48(0x0000'AABB'CCDD'EEFF, 0x1234);
    EXPECT_EQ(reg(reg::kCount), 0x34);
    EXPECT_EQ(reg(reg::kLbaLow), 0xFF);
    write8(ctl(), 0, kCtlHob);
    EXPECT_EQ(reg(reg::kCount), 0x12);
    EXPECT_EQ(reg(reg::kLbaLow), 0xCC);
    EXPECT_EQ(reg(reg::kLbaMid), 0xBB);
    EXPECT_EQ(reg(reg::kLbaHigh), 0xAA);
    set_reg(reg::kErrorFeature, 0);  // a register write clears HOB
    EXPECT_EQ(reg(reg::kCount), 0x34);
}

TEST_F(ControlTest, PciIdentityAndRegisters) {
    start();
    auto cfg8 = [&](uint16_t off) {
        uint8_t v = 0;
        dev->config_read(off, std::span(&v, 1));
        return v;
    };
    auto cfg16 = [&](uint16_t off) {
        return static_cast<uint16_t>(cfg8(off) | cfg8(off + 1) << 8);
    };
    EXPECT_EQ(cfg16(0x00), 0x8086);
    EXPECT_EQ(cfg16(0x02), 0x7111);
    EXPECT_EQ(cfg8(0x09), 0x80);
    EXPECT_EQ(cfg8(0x0A), 0x01);
    EXPECT_EQ(cfg8(0x0B), 0x01);
    EXPECT_EQ(cfg8(0x0E), 0x00);
    EXPECT_NE(cfg8(0x41) & 0x80, 0);  // primary decode enabled
    EXPECT_NE(cfg8(0x43) & 0x80, 0);  // secondary decode enabled
    auto bars = dev->bars();
    ASSERT_EQ(bars.size(), 1u);
    EXPECT_EQ(bars[0].index, 4);
    EXPECT_EQ(bars[0].size, 16u);
    EXPECT_TRUE(bars[0].io);
    EXPECT_EQ(cfg8(0x20) & 1, 1);  // I/O BAR type bit
    for (uint16_t off : {0x44, 0x48, 0x4A, 0x4B}) {
        uint8_t v = 0x5A;
        dev->config_write(off, std::span(&v, 1));
        EXPECT_EQ(cfg8(off), 0x5A) << off;
    }
    // BM status: drive 0 DMA capable after power-on, R/W; no drive 1.
    EXPECT_EQ(bm_status() & 0x60, 0x20);
    // Clearing the decode enable takes the channel off the bus.
    uint8_t off = 0;
    dev->config_write(0x41, std::span(&off, 1));
    EXPECT_EQ(status(), 0xFF);
    select(0);
    command(cmd::kIdleImmediate);
    EXPECT_FALSE(irq[0]->level());
}

TEST_F(ControlTest, DestroyingTheDeviceUnregistersItsFds) {
    start({DriveSpec{}, DriveSpec{}});
    EXPECT_EQ(events.handlers.size(), 2u);
    auto block = dev->command_block(0);
    dev.reset();
    EXPECT_TRUE(events.handlers.empty());
    EXPECT_EQ(events.removed.size(), 2u);
    EXPECT_EQ(read8(*block, 7), 0xFF);  // a stale port block is harmless
}

}  // namespace
}  // namespace rv::test
