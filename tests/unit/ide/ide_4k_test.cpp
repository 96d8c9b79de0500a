// The IDE disk with cache=none on a host disk whose logical sectors are
// 4 KiB (min_direct_alignment = 4096 stands in for one): ATA commands in
// 512-byte sectors, PIO and DMA, at any LBA and count, must work.
#include "ide_test_util.h"

namespace rv::test {
namespace {

using namespace ata;

class Ide4kTest : public IdeTest, public testing::WithParamInterface<BlockOptions::Engine> {
  protected:
    static constexpr uint64_t kDisk = 1 << 20;
    void SetUp() override {
        // Skip where the filesystem refuses O_DIRECT at all.
        TempImage probe(4096);
        if (!BlockBackend::open(probe.path(), {.cache = BlockOptions::Cache::None}))
            GTEST_SKIP() << "no O_DIRECT on /tmp";
        start({DriveSpec{.size = kDisk,
                         .engine = GetParam(),
                         .cache = BlockOptions::Cache::None,
                         .min_direct_alignment = 4096}});
        images[0]->write(0, pattern(kDisk, 0x61));
        enable_bus_master();
    }
    // A DMA command is DRQ (not BSY) while the backend works.
    void finish_dma() {
        for (int i = 0; i < 100 && (alt_status() & (kStatusBsy | kStatusDrq)); ++i)
            events.pump(5000);
    }
    std::vector<uint8_t> file_with(uint64_t offset, const std::vector<uint8_t>& data) {
        auto want = pattern(kDisk, 0x61);
        std::copy(data.begin(), data.end(), want.begin() + static_cast<ptrdiff_t>(offset));
        return want;
    }
};

TEST_P(Ide4kTest, PioReadAndWriteSingleSectors) {
    auto file = pattern(kDisk, 0x61);
    lba28(3, 1);
    command(cmd::kReadSectors);
    EXPECT_EQ(pio_in(1), std::vector<uint8_t>(file.begin() + 3 * 512, file.begin() + 4 * 512));
    EXPECT_EQ(status(), kStatusReady) << "error " << int(error());

    auto data = pattern(3 * 512, 0x0b);  // sectors 7..9: across a 4 KiB boundary
    lba28(7, 3);
    command(cmd::kWriteSectors);
    pio_out(data);
    EXPECT_EQ(status(), kStatusReady) << "error " << int(error());
    EXPECT_EQ(first_difference(images[0]->read(0, kDisk), file_with(7 * 512, data)),
              std::string::npos);
}

TEST_P(Ide4kTest, DmaReadAndWriteOddSectorCounts) {
    constexpr uint64_t kTable = 0x1000;
    auto data = pattern(5 * 512, 0x3d);
    ASSERT_TRUE(memory.write(GuestAddress(0x20000), data));
    write_prd(kTable, {{0x20000, 5 * 512, ide::kPrdEndOfTable}});
    bm_set_prd(kTable);
    bm_write8(ide::kBmCommand, 0);
    lba28(13, 5);
    command(cmd::kWriteDma);
    bm_write8(ide::kBmCommand, ide::kBmCmdStart);
    finish_dma();
    EXPECT_EQ(status(), kStatusReady) << "error " << int(error());
    bm_write8(ide::kBmCommand, 0);
    bm_write8(ide::kBmStatus, ide::kBmStatusInterrupt | ide::kBmStatusError);
    EXPECT_EQ(first_difference(images[0]->read(0, kDisk), file_with(13 * 512, data)),
              std::string::npos);

    write_prd(kTable, {{0x30000, 5 * 512, ide::kPrdEndOfTable}});
    bm_write8(ide::kBmCommand, ide::kBmCmdToMemory);
    lba28(13, 5);
    command(cmd::kReadDma);
    bm_write8(ide::kBmCommand, ide::kBmCmdToMemory | ide::kBmCmdStart);
    finish_dma();
    EXPECT_EQ(status(), kStatusReady) << "error " << int(error());
    EXPECT_EQ(guest_bytes(0x30000, 5 * 512), data);
}

std::string engine_name(const testing::TestParamInfo<BlockOptions::Engine>& p) {
    return p.param == BlockOptions::Engine::Sync ? "Sync" : "Uring";
}

INSTANTIATE_TEST_SUITE_P(Engines, Ide4kTest,
                         testing::Values(BlockOptions::Engine::Sync, BlockOptions::Engine::IoUring),
                         engine_name);

}  // namespace
}  // namespace rv::test
