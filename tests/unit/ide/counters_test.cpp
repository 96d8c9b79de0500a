// The per-drive counters the accounting bills (issue 14): a read or write
// command counts once, with all its bytes, when it completes without error
// (PIO and DMA, LBA28 and LBA48, single and multiple); failed, aborted and
// cancelled commands count only as requests.
#include <unistd.h>

#include "ide_test_util.h"
#include "support/device_counters.h"

namespace rv::test {
namespace {

using namespace ata;
using ide::kBmCmdStart;
using ide::kBmCmdToMemory;
using ide::kBmCommand;
using ide::kBmStatusError;
using ide::kBmStatusInterrupt;
using ide::kPrdEndOfTable;

constexpr uint64_t kTable = 0x1000;

class IdeCountersTest : public IdeTest {
  protected:
    // One drive's counter by its plain name (as the accounting sees it).
    uint64_t drive(unsigned index, std::string_view name) {
        return counter(dev->drive_counters(index), name).value_or(~uint64_t{0});
    }
    void expect_io(unsigned index, uint64_t reads, uint64_t read_bytes, uint64_t writes,
                   uint64_t write_bytes) {
        EXPECT_EQ(drive(index, "reads"), reads);
        EXPECT_EQ(drive(index, "read_bytes"), read_bytes);
        EXPECT_EQ(drive(index, "writes"), writes);
        EXPECT_EQ(drive(index, "write_bytes"), write_bytes);
    }
    // The libata order: PRD address and direction, command, then start;
    // then the completion is delivered and the driver stops the engine.
    void dma(uint8_t op, bool lba48_cmd, uint64_t lba, uint16_t count, bool to_memory) {
        bm_set_prd(kTable);
        bm_write8(kBmCommand, to_memory ? kBmCmdToMemory : 0);
        if (lba48_cmd)
            lba48(lba, count);
        else
            lba28(static_cast<uint32_t>(lba), static_cast<uint8_t>(count));
        command(op);
        bm_write8(kBmCommand, static_cast<uint8_t>((to_memory ? kBmCmdToMemory : 0) | kBmCmdStart));
        events.pump();
        bm_write8(kBmCommand, 0);
        bm_write8(ide::kBmStatus, kBmStatusInterrupt | kBmStatusError);
    }
};

TEST_F(IdeCountersTest, PioReadsAndWritesCountWhenTheyComplete) {
    start();  // 2048 sectors
    lba28(10, 3);
    command(cmd::kReadSectors);
    settle();
    read_data(3 * 512 - 2);  // one buffer: the last block not yet all taken
    expect_io(0, 0, 0, 0, 0);
    read_data(2);
    EXPECT_EQ(alt_status(), kStatusReady);
    expect_io(0, 1, 3 * 512, 0, 0);

    lba28(0, 0);  // LBA28 count 0: 256 sectors
    command(cmd::kReadSectors);
    pio_in(256);
    lba48(100, 10);
    command(cmd::kReadMultipleExt);  // blocks of 16: one short block
    pio_in(10, kMaxMultipleSectors);
    expect_io(0, 3, (3 + 256 + 10) * 512, 0, 0);

    lba28(7, 2);
    command(cmd::kWriteSectors);
    pio_out(pattern(2 * 512, 1));
    lba48(2000, 20);
    command(cmd::kWriteMultipleExt);
    pio_out(pattern(20 * 512, 2), kMaxMultipleSectors);
    EXPECT_EQ(status(), kStatusReady);
    expect_io(0, 3, 269 * 512, 2, 22 * 512);
    EXPECT_EQ(drive(0, "requests"), 5u);
}

TEST_F(IdeCountersTest, DmaReadsAndWritesCountOnce) {
    start({DriveSpec{.size = 4 << 20}});
    enable_bus_master();
    write_prd(kTable, {{0x20000, 4096, kPrdEndOfTable}});
    dma(cmd::kReadDma, false, 50, 8, true);
    EXPECT_EQ(status(), kStatusReady);
    write_prd(kTable, {{0x30000, 768, 0}, {0x31000, 768, kPrdEndOfTable}});
    dma(cmd::kWriteDmaExt, true, 4000, 3, false);
    EXPECT_EQ(status(), kStatusReady);
    // With the write cache off a write is also flushed before it completes:
    // still one write.
    set_reg(reg::kErrorFeature, feature::kDisableWriteCache);
    command(cmd::kSetFeatures);
    write_prd(kTable, {{0x20000, 512, kPrdEndOfTable}});
    dma(cmd::kWriteDma, false, 1, 1, false);
    settle();
    EXPECT_EQ(status(), kStatusReady);
    // A transfer the backend gets in two submissions (more scattered
    // sectors than BlockBackend::kMaxIovecs) is still one command.
    constexpr uint32_t kScattered = BlockBackend::kMaxIovecs + 76;
    std::vector<ide::PrdEntry> many;
    for (uint32_t i = 0; i < kScattered; ++i)
        many.push_back(
            {0x100000 + i * 1024, 512, i + 1 == kScattered ? kPrdEndOfTable : uint16_t{0}});
    write_prd(kTable, many);
    dma(cmd::kReadDmaExt, true, 0, kScattered, true);
    EXPECT_EQ(status(), kStatusReady);
    expect_io(0, 2, (8 + kScattered) * 512, 2, 4 * 512);
    EXPECT_EQ(drive(0, "requests"), 5u);  // SET FEATURES too
}

TEST_F(IdeCountersTest, FailedAbortedAndCancelledCommandsMoveNothing) {
    start({DriveSpec{}, DriveSpec{.read_only = true}});
    enable_bus_master();
    lba48(2047, 2);  // one past the end
    command(cmd::kReadSectorsExt);
    EXPECT_EQ(error(), kErrIdnf);
    select(1);
    lba28(0, 1, 1);
    command(cmd::kWriteSectors);  // read-only
    EXPECT_EQ(error(), kErrAbrt);
    select(0);
    write_prd(kTable, {{0x20000, 512, kPrdEndOfTable}});
    dma(cmd::kReadDma, false, 0, 2, true);  // the PRD table is one sector short
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    // Cancelled by SRST after one of two blocks reached the guest.
    lba28(0, 2);
    command(cmd::kReadSectors);
    settle();
    read_data(512);
    write8(ctl(), 0, kCtlSrst);
    write8(ctl(), 0, 0);
    // Cancelled by stopping the bus master before the completion arrived.
    write_prd(kTable, {{0x20000, 4096, kPrdEndOfTable}});
    bm_set_prd(kTable);
    lba28(0, 8);
    command(cmd::kReadDma);
    bm_write8(kBmCommand, kBmCmdToMemory | kBmCmdStart);
    bm_write8(kBmCommand, kBmCmdToMemory);
    events.pump();
    EXPECT_TRUE(dev->idle());
    // The image shrinks under the drive: the backend fails the read (UNC).
    ASSERT_EQ(::truncate(images[0]->path().c_str(), 0), 0);
    lba28(8, 1);
    command(cmd::kReadSectors);
    settle();
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    EXPECT_EQ(error(), kErrUnc);

    expect_io(0, 0, 0, 0, 0);
    expect_io(1, 0, 0, 0, 0);
    EXPECT_EQ(drive(0, "requests"), 5u);
    EXPECT_EQ(drive(1, "requests"), 1u);
}

TEST_F(IdeCountersTest, CommandsWithoutDataAreRequestsOnly) {
    start();
    select(0);
    command(cmd::kIdentify);
    pio_in(1);
    command(cmd::kFlushCache);
    settle();
    lba28(0, 16);
    command(cmd::kReadVerify);
    command(cmd::kCheckPowerMode);
    command(cmd::kNop);  // aborts
    expect_io(0, 0, 0, 0, 0);
    EXPECT_EQ(drive(0, "requests"), 5u);
}

TEST_F(IdeCountersTest, EachDriveCountsItsOwn) {
    start(
        {DriveSpec{}, std::nullopt, std::nullopt, DriveSpec{}});  // primary master, secondary slave
    lba28(4, 2, 1, 1);
    command(cmd::kReadSectors, 1);
    pio_in(2, 1, 1);
    lba28(0, 1, 0, 0);
    command(cmd::kWriteSectors, 0);
    pio_out(pattern(512, 3), 1, 0);
    expect_io(0, 0, 0, 1, 512);
    expect_io(3, 1, 1024, 0, 0);
    EXPECT_TRUE(dev->drive_counters(1).empty());  // absent
    EXPECT_TRUE(dev->drive_counters(2).empty());
    EXPECT_TRUE(dev->drive_counters(4).empty());  // out of range
    // --stats: the controller's counters carry every present drive's.
    const DeviceCounters c = dev->counters();
    EXPECT_EQ(counter(c, "drive0_writes"), 1u);
    EXPECT_EQ(counter(c, "drive0_write_bytes"), 512u);
    EXPECT_EQ(counter(c, "drive3_reads"), 1u);
    EXPECT_EQ(counter(c, "drive3_read_bytes"), 1024u);
    EXPECT_EQ(counter(c, "drive3_requests"), 1u);
    EXPECT_FALSE(counter(c, "drive1_reads"));
    EXPECT_EQ(counter(c, "throttled"), 0u);
}

}  // namespace
}  // namespace rv::test
