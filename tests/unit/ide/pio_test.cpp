#include "ide_test_util.h"

namespace rv::test {
namespace {

using namespace ata;

class PioTest : public IdeTest {};

TEST_F(PioTest, ReadOneSector) {
    start();
    images[0]->write(5 * 512, pattern(512, 3));
    lba28(5, 1);
    command(cmd::kReadSectors);
    EXPECT_EQ(alt_status(), kStatusBsy);  // waiting for the backend
    EXPECT_EQ(pio_in(1), pattern(512, 3));
    EXPECT_EQ(alt_status(), kStatusReady);
    EXPECT_EQ(irq[0]->rising_edges(), 1u);
}

TEST_F(PioTest, ReadManySectorsAcrossBufferChunks) {
    start();
    auto data = pattern(300 * 512, 9);
    images[0]->write(100 * 512, data);
    lba48(100, 300);
    command(cmd::kReadSectorsExt);
    EXPECT_EQ(pio_in(300), data);
    EXPECT_EQ(irq[0]->rising_edges(), 300u);  // one INTRQ per DRQ block
    EXPECT_EQ(alt_status(), kStatusReady);
}

TEST_F(PioTest, ReadWith32BitAccesses) {
    start();
    images[0]->write(0, pattern(1024, 1));
    lba28(0, 2);
    command(cmd::kReadSectors);
    settle();
    auto first = read_data(512, 4);
    settle();
    auto second = read_data(512, 4);
    first.insert(first.end(), second.begin(), second.end());
    EXPECT_EQ(first, pattern(1024, 1));
}

TEST_F(PioTest, ReadMultipleHandsOutBlocksOfTheMultipleCount) {
    start();
    auto data = pattern(10 * 512, 4);
    images[0]->write(0, data);
    set_reg(reg::kCount, 4);
    command(cmd::kSetMultiple);
    ASSERT_EQ(status(), kStatusReady);
    irq[0]->clear_history();
    lba28(0, 10);
    command(cmd::kReadMultiple);
    settle();
    EXPECT_EQ(status(), kStatusReady | kStatusDrq);
    read_data(3 * 512);
    EXPECT_EQ(alt_status() & kStatusDrq, kStatusDrq) << "block of 4 ended early";
    EXPECT_EQ(irq[0]->rising_edges(), 1u);
    read_data(512);
    EXPECT_EQ(irq[0]->rising_edges(), 2u);  // next block announced
    EXPECT_EQ(status(), kStatusReady | kStatusDrq);
    read_data(4 * 512);
    read_data(2 * 512);  // the short last block
    EXPECT_EQ(irq[0]->rising_edges(), 3u);
    EXPECT_EQ(alt_status(), kStatusReady);
}

TEST_F(PioTest, ReadMultipleWithMultipleModeOffAborts) {
    start();
    set_reg(reg::kCount, 0);
    command(cmd::kSetMultiple);
    ASSERT_EQ(status(), kStatusReady);
    lba28(0, 1);
    command(cmd::kReadMultiple);
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    EXPECT_EQ(error(), kErrAbrt);
}

TEST_F(PioTest, WriteThenReadBackFromTheFile) {
    start();
    auto data = pattern(3 * 512, 77);
    lba28(7, 3);
    command(cmd::kWriteSectors);
    EXPECT_EQ(irq[0]->rising_edges(), 0u);  // the first block needs no INTRQ
    pio_out(data);
    EXPECT_EQ(status(), kStatusReady);
    EXPECT_EQ(irq[0]->rising_edges(), 3u);
    EXPECT_EQ(images[0]->read(7 * 512, data.size()), data);
    EXPECT_EQ(images[0]->read(6 * 512, 512), std::vector<uint8_t>(512, 0));
    EXPECT_EQ(images[0]->read(10 * 512, 512), std::vector<uint8_t>(512, 0));
}

TEST_F(PioTest, WriteMultipleExt) {
    start();
    auto data = pattern(20 * 512, 21);
    lba48(1000, 20);
    command(cmd::kWriteMultipleExt);
    pio_out(data, 16);
    EXPECT_EQ(status(), kStatusReady);
    EXPECT_EQ(irq[0]->rising_edges(), 2u);  // blocks of 16 and 4
    EXPECT_EQ(images[0]->read(1000 * 512, data.size()), data);
}

TEST_F(PioTest, WriteWithCacheDisabledStillCompletes) {
    start();
    set_reg(reg::kErrorFeature, feature::kDisableWriteCache);
    command(cmd::kSetFeatures);
    ASSERT_EQ(status(), kStatusReady);
    lba28(3, 1);
    command(cmd::kWriteSectors);
    pio_out(pattern(512, 5));
    EXPECT_EQ(status(), kStatusReady);
    EXPECT_EQ(images[0]->read(3 * 512, 512), pattern(512, 5));
}

TEST_F(PioTest, Lba48LastSectorReadsAndOnePastIsIdnf) {
    start();  // 2048 sectors
    images[0]->write(2047 * 512, pattern(512, 8));
    lba48(2047, 1);
    command(cmd::kReadSectorsExt);
    EXPECT_EQ(pio_in(1), pattern(512, 8));
    lba48(2048, 1);
    command(cmd::kReadSectorsExt);
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    EXPECT_EQ(error(), kErrIdnf);
    lba48(2047, 2);
    command(cmd::kReadSectorsExt);
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    EXPECT_EQ(error(), kErrIdnf);
}

TEST_F(PioTest, CountZeroMeans256ForLba28) {
    start();
    auto data = pattern(256 * 512, 12);
    images[0]->write(0, data);
    lba28(0, 0);
    command(cmd::kReadSectors);
    EXPECT_EQ(pio_in(256), data);
    EXPECT_EQ(alt_status(), kStatusReady);
    // 1792 + 256 = 2048 fits; one further does not.
    lba28(1792, 0);
    command(cmd::kReadVerify);
    EXPECT_EQ(status(), kStatusReady);
    lba28(1793, 0);
    command(cmd::kReadVerify);
    EXPECT_EQ(error(), kErrIdnf);
}

TEST_F(PioTest, CountZeroMeans65536ForLba48) {
    start({DriveSpec{.size = 65536ull * 512}});
    lba48(0, 0);
    command(cmd::kReadVerifyExt);
    EXPECT_EQ(status(), kStatusReady);
    lba48(1, 0);
    command(cmd::kReadVerifyExt);
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    EXPECT_EQ(error(), kErrIdnf);
}

TEST_F(PioTest, ChsAddressing) {
    start();
    // Cylinder 1, head 2, sector 3 -> (1 * 16 + 2) * 63 + 2 = 1136.
    images[0]->write(1136 * 512, pattern(512, 40));
    set_reg(reg::kCount, 1);
    set_reg(reg::kLbaLow, 3);
    set_reg(reg::kLbaMid, 1);
    set_reg(reg::kLbaHigh, 0);
    set_reg(reg::kDevice, 0xA0 | 2);
    command(cmd::kReadSectors);
    EXPECT_EQ(pio_in(1), pattern(512, 40));
}

TEST_F(PioTest, UnknownCommandAborts) {
    start();
    select(0);
    for (uint8_t op : {uint8_t{0x00}, uint8_t{0x77}, uint8_t{0xFF}}) {
        command(op);
        EXPECT_EQ(alt_status(), kStatusReady | kStatusErr) << int(op);
        EXPECT_EQ(error(), kErrAbrt) << int(op);
        EXPECT_TRUE(irq[0]->level());
        EXPECT_EQ(status(), kStatusReady | kStatusErr);
        EXPECT_FALSE(irq[0]->level());
    }
}

TEST_F(PioTest, ReadOnlyDriveRefusesWrites) {
    start({DriveSpec{.read_only = true}});
    images[0]->write(0, pattern(512, 2));
    lba28(0, 1);
    command(cmd::kWriteSectors);
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    EXPECT_EQ(error(), kErrAbrt);
    write_data(pattern(512, 99));  // ignored: no DRQ
    events.pump();
    EXPECT_EQ(images[0]->read(0, 512), pattern(512, 2));
    // Reads still work.
    lba28(0, 1);
    command(cmd::kReadSectors);
    EXPECT_EQ(pio_in(1), pattern(512, 2));
}

TEST_F(PioTest, NonDataCommands) {
    start();
    select(0);
    set_reg(reg::kCount, 0);
    command(cmd::kCheckPowerMode);
    EXPECT_EQ(status(), kStatusReady);
    EXPECT_EQ(reg(reg::kCount), 0xFF);
    for (uint8_t op : {cmd::kIdle, cmd::kIdleImmediate, cmd::kStandby, cmd::kStandbyImmediate,
                       cmd::kRecalibrate}) {
        command(op);
        EXPECT_EQ(status(), kStatusReady) << int(op);
    }
    set_reg(reg::kCount, 32);
    set_reg(reg::kDevice, 0xA0 | 7);
    command(cmd::kInitializeParams);
    EXPECT_EQ(status(), kStatusReady);
    set_reg(reg::kCount, 3);  // not a power of two
    command(cmd::kSetMultiple);
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
}

TEST_F(PioTest, IoUringEngineReadsAndWrites) {
    start({DriveSpec{.engine = BlockOptions::Engine::IoUring}});
    auto data = pattern(40 * 512, 66);
    lba48(10, 40);
    command(cmd::kWriteSectorsExt);
    pio_out(data);
    EXPECT_EQ(status(), kStatusReady);
    lba48(10, 40);
    command(cmd::kReadSectorsExt);
    EXPECT_EQ(pio_in(40), data);
}

}  // namespace
}  // namespace rv::test
