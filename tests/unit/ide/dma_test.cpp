#include "ide_test_util.h"

namespace rv::test {
namespace {

using namespace ata;
using ide::kBmCmdStart;
using ide::kBmCmdToMemory;
using ide::kBmCommand;
using ide::kBmStatusActive;
using ide::kBmStatusError;
using ide::kBmStatusInterrupt;
using ide::kPrdEndOfTable;
using ide::PrdEntry;

constexpr uint64_t kTable = 0x1000;

class DmaTest : public IdeTest {
  protected:
    void SetUp() override {
        start({DriveSpec{.size = 4 << 20}});
        enable_bus_master();
    }
    // The libata order: PRD address and direction, command, then start.
    void run_dma(uint8_t op, bool lba48_cmd, uint64_t lba, uint16_t count, bool to_memory) {
        bm_set_prd(kTable);
        bm_write8(kBmCommand, to_memory ? kBmCmdToMemory : 0);
        if (lba48_cmd)
            lba48(lba, count);
        else
            lba28(static_cast<uint32_t>(lba), static_cast<uint8_t>(count));
        command(op);
        bm_write8(kBmCommand, static_cast<uint8_t>((to_memory ? kBmCmdToMemory : 0) | kBmCmdStart));
        events.pump();
    }
    void finish_dma() {
        EXPECT_NE(bm_status() & kBmStatusInterrupt, 0);
        bm_write8(kBmCommand, 0);                                        // stop
        bm_write8(ide::kBmStatus, kBmStatusInterrupt | kBmStatusError);  // ack
        EXPECT_EQ(bm_status() & (kBmStatusInterrupt | kBmStatusError | kBmStatusActive), 0);
    }
};

TEST_F(DmaTest, ReadWithMultiEntryTableIncluding64KiBEntry) {
    // 1024 + 65536 + 512 bytes = 131 sectors, in three scattered regions.
    write_prd(kTable, {{0x20000, 1024, 0}, {0x40000, 0, 0}, {0x60000, 512, kPrdEndOfTable}});
    auto data = pattern(131 * 512, 17);
    images[0]->write(50 * 512, data);
    run_dma(cmd::kReadDma, false, 50, 131, true);
    EXPECT_EQ(status(), kStatusReady);
    EXPECT_EQ(bm_status() & (kBmStatusActive | kBmStatusError | kBmStatusInterrupt),
              kBmStatusInterrupt);
    EXPECT_EQ(guest_bytes(0x20000, 1024), std::vector<uint8_t>(data.begin(), data.begin() + 1024));
    EXPECT_EQ(guest_bytes(0x40000, 65536),
              std::vector<uint8_t>(data.begin() + 1024, data.begin() + 1024 + 65536));
    EXPECT_EQ(guest_bytes(0x60000, 512), std::vector<uint8_t>(data.end() - 512, data.end()));
    EXPECT_EQ(guest_bytes(0x60200, 16), std::vector<uint8_t>(16, 0));  // nothing past the end
    finish_dma();
}

TEST_F(DmaTest, WriteWithSectorsSpanningEntries) {
    // Sector 0 = 768 bytes at A + first 256 of B... regions of odd sizes.
    write_prd(kTable, {{0x30000, 768, 0}, {0x31000, 256, 0}, {0x50000, 512, kPrdEndOfTable}});
    auto data = pattern(3 * 512, 33);
    ASSERT_TRUE(memory.write(GuestAddress(0x30000), std::span(data.data(), 768)));
    ASSERT_TRUE(memory.write(GuestAddress(0x31000), std::span(data.data() + 768, 256)));
    ASSERT_TRUE(memory.write(GuestAddress(0x50000), std::span(data.data() + 1024, 512)));
    run_dma(cmd::kWriteDmaExt, true, 4000, 3, false);
    EXPECT_EQ(status(), kStatusReady);
    EXPECT_EQ(images[0]->read(4000 * 512, data.size()), data);
    finish_dma();
}

TEST_F(DmaTest, StartBeforeCommandAlsoWorks) {
    write_prd(kTable, {{0x20000, 512, kPrdEndOfTable}});
    images[0]->write(9 * 512, pattern(512, 1));
    bm_set_prd(kTable);
    bm_write8(kBmCommand, kBmCmdToMemory | kBmCmdStart);
    lba28(9, 1);
    command(cmd::kReadDma);
    events.pump();
    EXPECT_EQ(status(), kStatusReady);
    EXPECT_EQ(guest_bytes(0x20000, 512), pattern(512, 1));
}

TEST_F(DmaTest, TableTooShortIsABusMasterError) {
    write_prd(kTable, {{0x20000, 512, kPrdEndOfTable}});
    run_dma(cmd::kReadDma, false, 0, 2, true);
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    EXPECT_EQ(error(), kErrAbrt);
    EXPECT_EQ(bm_status() & (kBmStatusActive | kBmStatusError | kBmStatusInterrupt),
              kBmStatusError | kBmStatusInterrupt);
    EXPECT_TRUE(dev->idle());
    finish_dma();
}

TEST_F(DmaTest, TableLongerThanTransferLeavesActiveSet) {
    write_prd(kTable, {{0x20000, 4096, kPrdEndOfTable}});
    run_dma(cmd::kReadDma, false, 0, 2, true);
    EXPECT_EQ(status(), kStatusReady);
    EXPECT_EQ(bm_status() & (kBmStatusActive | kBmStatusError | kBmStatusInterrupt),
              kBmStatusActive | kBmStatusInterrupt);
    finish_dma();
}

TEST_F(DmaTest, RegionOutsideGuestRamIsAnErrorNotACrash) {
    for (uint32_t addr : {uint32_t{kMemSize - 256}, uint32_t{0xFFFFF000}, uint32_t{kMemSize}}) {
        write_prd(kTable, {{addr, 512, kPrdEndOfTable}});
        run_dma(cmd::kReadDma, false, 0, 1, true);
        EXPECT_EQ(status(), kStatusReady | kStatusErr) << addr;
        EXPECT_NE(bm_status() & kBmStatusError, 0) << addr;
        finish_dma();
    }
    // The table itself outside RAM.
    bm_set_prd(0xFFFFFF00);
    lba28(0, 1);
    command(cmd::kReadDma);
    bm_write8(kBmCommand, kBmCmdToMemory | kBmCmdStart);
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    EXPECT_NE(bm_status() & kBmStatusError, 0);
    finish_dma();
}

TEST_F(DmaTest, EndlessTableIsCutOff) {
    // Every entry 2 bytes without EOT, for the whole of the 64 KiB after the
    // table: the walk stops at its cap instead of running on.
    std::vector<PrdEntry> entries(8192, PrdEntry{0x100000, 2, 0});
    write_prd(kTable, entries);
    run_dma(cmd::kReadDmaExt, true, 0, 100, true);  // 51200 bytes > 4096 x 2
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    EXPECT_NE(bm_status() & kBmStatusError, 0);
    finish_dma();
}

TEST_F(DmaTest, BusMasterDisabledRefusesDma) {
    std::array<uint8_t, 2> cmdreg{kPciCommandIo, 0};
    dev->config_write(pci_reg::kCommand, cmdreg);
    write_prd(kTable, {{0x20000, 512, kPrdEndOfTable}});
    ASSERT_TRUE(memory.fill(GuestAddress(0x20000), 0xEE, 512));
    images[0]->write(0, pattern(512, 1));
    run_dma(cmd::kReadDma, false, 0, 1, true);
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    EXPECT_EQ(guest_bytes(0x20000, 512), std::vector<uint8_t>(512, 0xEE));
}

TEST_F(DmaTest, ReadOnlyDriveRefusesDmaWrite) {
    dev.reset();
    images[0].reset();
    start({DriveSpec{.read_only = true}});
    enable_bus_master();
    images[0]->write(0, pattern(512, 4));
    write_prd(kTable, {{0x20000, 512, kPrdEndOfTable}});
    ASSERT_TRUE(memory.fill(GuestAddress(0x20000), 0xAB, 512));
    run_dma(cmd::kWriteDma, false, 0, 1, false);
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    EXPECT_EQ(error(), kErrAbrt);
    EXPECT_EQ(images[0]->read(0, 512), pattern(512, 4));
}

TEST_F(DmaTest, StopMidTransferCancelsAndLateCompletionIsIgnored) {
    write_prd(kTable, {{0x20000, 4096, kPrdEndOfTable}});
    images[0]->write(0, pattern(4096, 8));
    bm_set_prd(kTable);
    lba28(0, 8);
    command(cmd::kReadDma);
    bm_write8(kBmCommand, kBmCmdToMemory | kBmCmdStart);
    EXPECT_FALSE(dev->idle());  // submitted, completion not yet delivered
    irq[0]->clear_history();
    bm_write8(kBmCommand, kBmCmdToMemory);  // stop
    EXPECT_TRUE(dev->idle());
    events.pump();
    EXPECT_EQ(irq[0]->rising_edges(), 0u);  // the cancelled command never completes
    EXPECT_EQ(status() & kStatusErr, kStatusErr);
    EXPECT_EQ(bm_status() & kBmStatusActive, 0);
    // The channel works again afterwards.
    write_prd(kTable, {{0x30000, 512, kPrdEndOfTable}});
    run_dma(cmd::kReadDma, false, 1, 1, true);
    EXPECT_EQ(status(), kStatusReady);
    auto expected = pattern(4096, 8);
    EXPECT_EQ(guest_bytes(0x30000, 512),
              std::vector<uint8_t>(expected.begin() + 512, expected.begin() + 1024));
}

// A DMA read's pages are marked for dirty tracking when the read completes:
// a dirty pass taken between submission and completion (a live migration's
// round) must not take the mark with the old bytes. So must a read the
// driver stops (its bytes may have landed).
TEST_F(DmaTest, ReadPagesAreMarkedDirtyWhenTheReadCompletes) {
    write_prd(kTable, {{0x20000, 4096, 0}, {0x23000, 512, kPrdEndOfTable}});
    memory.set_dirty_tracking(true);
    (void)memory.take_dirty(0);
    bm_set_prd(kTable);
    lba28(0, 9);
    command(cmd::kReadDma);
    bm_write8(kBmCommand, kBmCmdToMemory | kBmCmdStart);
    ASSERT_FALSE(dev->idle());                         // submitted, not yet completed
    const auto before = memory.take_dirty(0);          // a dirty pass in between
    events.pump();
    EXPECT_EQ(status(), kStatusReady);
    const auto after = memory.take_dirty(0);
    auto marked = [](const std::vector<uint64_t>& bits, uint64_t addr) {
        const uint64_t page = addr / GuestMemory::kDirtyPageSize;
        return ((bits[page / 64] >> (page % 64)) & 1) != 0;
    };
    EXPECT_TRUE(marked(after, 0x20000));
    EXPECT_TRUE(marked(after, 0x23000));
    EXPECT_FALSE(marked(before, 0x20000)) << "marked before the bytes were there";
    finish_dma();

    // Stopped before its completion is delivered: still marked.
    write_prd(kTable, {{0x30000, 512, kPrdEndOfTable}});
    bm_set_prd(kTable);
    lba28(0, 1);
    command(cmd::kReadDma);
    bm_write8(kBmCommand, kBmCmdToMemory | kBmCmdStart);
    (void)memory.take_dirty(0);
    bm_write8(kBmCommand, kBmCmdToMemory);  // stop
    EXPECT_TRUE(marked(memory.take_dirty(0), 0x30000));

    // A DMA write only reads guest memory: nothing marked for its buffers.
    write_prd(kTable, {{0x50000, 512, kPrdEndOfTable}});
    (void)memory.take_dirty(0);
    run_dma(cmd::kWriteDma, false, 8, 1, false);
    EXPECT_EQ(status(), kStatusReady);
    EXPECT_FALSE(marked(memory.take_dirty(0), 0x50000));
}

TEST_F(DmaTest, FlushCacheGoesThroughTheBackend) {
    select(0);
    command(cmd::kFlushCache);
    // BSY with a request submitted; the interrupt comes with its completion.
    EXPECT_EQ(alt_status(), kStatusBsy);
    ASSERT_EQ(events.handlers.size(), 1u);
    EXPECT_FALSE(irq[0]->level());
    settle();
    EXPECT_TRUE(irq[0]->level());
    EXPECT_EQ(status(), kStatusReady);
    command(cmd::kFlushCacheExt);
    settle();
    EXPECT_EQ(status(), kStatusReady);
}

TEST(DmaCursor, ChunksAreWholeSectors) {
    std::vector<uint8_t> backing(8192);
    std::vector<iovec> iov;
    // 3 x 300 bytes + 1 x 636 = 1536 bytes = 3 sectors.
    for (int i = 0; i < 3; ++i) iov.push_back({backing.data() + 1000 * i, 300});
    iov.push_back({backing.data() + 4000, 636});
    ide::DmaCursor cursor(iov);
    auto a = cursor.next(3, 512);  // 900 bytes -> trimmed to 512
    uint64_t la = 0;
    for (auto& v : a) la += v.iov_len;
    EXPECT_EQ(la, 512u);
    auto b = cursor.next(3, 512);  // 88 + 300 + 636: the rest, whole
    uint64_t lb = 0;
    for (auto& v : b) lb += v.iov_len;
    EXPECT_EQ(lb, 1024u);
    EXPECT_EQ(static_cast<uint8_t*>(b[0].iov_base), backing.data() + 1000 + 212);
    uint64_t rest = 0;
    while (!cursor.done()) {
        auto c = cursor.next(3, 512);
        ASSERT_FALSE(c.empty());
        for (auto& v : c) rest += v.iov_len;
    }
    EXPECT_EQ(la + lb + rest, 1536u);
}

}  // namespace
}  // namespace rv::test
