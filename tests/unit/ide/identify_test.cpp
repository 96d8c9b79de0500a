#include "devices/legacy/ide/identify.h"

#include <numeric>

#include "ide_test_util.h"

namespace rv::test {
namespace {

using namespace ata;

std::array<uint16_t, 256> identify_over_ports(IdeTest& t, unsigned unit = 0) {
    t.select(unit);
    t.command(cmd::kIdentify);
    auto bytes = t.pio_in(1);
    std::array<uint16_t, 256> words{};
    for (size_t i = 0; i < words.size() && 2 * i + 1 < bytes.size(); ++i)
        words[i] = static_cast<uint16_t>(bytes[2 * i] | bytes[2 * i + 1] << 8);
    return words;
}

std::string ata_string(const std::array<uint16_t, 256>& id, unsigned first, unsigned words) {
    std::string s;
    for (unsigned i = 0; i < words; ++i) {
        s.push_back(static_cast<char>(id[first + i] >> 8));
        s.push_back(static_cast<char>(id[first + i] & 0xFF));
    }
    return s;
}

uint32_t dword(const std::array<uint16_t, 256>& id, unsigned w) {
    return id[w] | uint32_t{id[w + 1]} << 16;
}

class IdentifyTest : public IdeTest {};

TEST_F(IdentifyTest, SmallDiskOverThePorts) {
    start();  // 1 MiB = 2048 sectors
    auto id = identify_over_ports(*this);
    EXPECT_EQ(id[0], 0x0040);
    EXPECT_EQ(id[1], 2);  // 2048 / (16 * 63)
    EXPECT_EQ(id[3], 16);
    EXPECT_EQ(id[6], 63);
    EXPECT_EQ(ata_string(id, 10, 10), "SERIAL-0            ");
    EXPECT_EQ(ata_string(id, 27, 20).substr(0, 18), "ringvisor HARDDISK");
    EXPECT_EQ(id[47], 0x8010);
    EXPECT_EQ(id[49] & 0x0300, 0x0300);  // LBA and DMA
    EXPECT_EQ(id[59], 0x0110);           // multiple mode on, 16 sectors
    EXPECT_EQ(dword(id, 60), 2048u);
    EXPECT_EQ(id[63] & 0xFF, 0x07);
    EXPECT_EQ(id[88] & 0xFF, 0x07);   // UDMA 0-2: PIIX4's UDMA33
    EXPECT_NE(id[80] & (1 << 6), 0);  // ATA-6
    EXPECT_EQ(id[83] & 0xC000, 0x4000);
    EXPECT_EQ(id[83] & 0x3400, 0x3400);  // FLUSH EXT, FLUSH, LBA48
    EXPECT_EQ(id[86] & 0x3400, 0x3400);
    EXPECT_NE(id[82] & (1 << 5), 0);  // write cache supported
    EXPECT_NE(id[85] & (1 << 5), 0);  // ... and enabled
    EXPECT_EQ(dword(id, 100), 2048u);
    EXPECT_EQ(dword(id, 102), 0u);
    // Integrity word: signature A5 and all bytes summing to zero.
    EXPECT_EQ(id[255] & 0xFF, 0xA5);
    uint8_t sum = 0;
    for (uint16_t w : id) sum = static_cast<uint8_t>(sum + (w & 0xFF) + (w >> 8));
    EXPECT_EQ(sum, 0);
    // The whole block was one DRQ block: done, no DRQ left.
    EXPECT_EQ(alt_status(), kStatusReady);
}

TEST_F(IdentifyTest, LargeSparseDiskCapsLba28AndCylinders) {
    const uint64_t size = 200ull << 30;  // 200 GiB sparse: beyond LBA28's 128 GiB
    start({DriveSpec{.size = size}});
    auto id = identify_over_ports(*this);
    EXPECT_EQ(id[1], 16383);
    EXPECT_EQ(dword(id, 60), 0x0FFFFFFFu);
    uint64_t lba48 = dword(id, 100) | uint64_t{dword(id, 102)} << 32;
    EXPECT_EQ(lba48, size / 512);
    uint8_t sum = 0;
    for (uint16_t w : id) sum = static_cast<uint8_t>(sum + (w & 0xFF) + (w >> 8));
    EXPECT_EQ(sum, 0);
}

TEST_F(IdentifyTest, IdentifyRaisesIntrqWhenDataIsReady) {
    start();
    select(0);
    command(cmd::kIdentify);
    settle();
    EXPECT_TRUE(irq[0]->level());
    EXPECT_EQ(alt_status() & kStatusDrq, kStatusDrq);
}

TEST_F(IdentifyTest, IdentifyPacketAborts) {
    start();
    select(0);
    command(cmd::kIdentifyPacket);
    EXPECT_EQ(alt_status(), kStatusReady | kStatusErr);
    EXPECT_EQ(error(), kErrAbrt);
    EXPECT_TRUE(irq[0]->level());
}

TEST_F(IdentifyTest, SetFeaturesShowsInIdentify) {
    start();
    select(0);
    set_reg(reg::kErrorFeature, feature::kSetTransferMode);
    set_reg(reg::kCount, kXferUdma | 2);
    command(cmd::kSetFeatures);
    EXPECT_EQ(status(), kStatusReady);
    set_reg(reg::kErrorFeature, feature::kDisableWriteCache);
    command(cmd::kSetFeatures);
    EXPECT_EQ(status(), kStatusReady);
    set_reg(reg::kCount, 4);
    command(cmd::kSetMultiple);
    EXPECT_EQ(status(), kStatusReady);
    auto id = identify_over_ports(*this);
    EXPECT_EQ(id[88], 0x0407);  // UDMA2 selected
    EXPECT_EQ(id[85] & (1 << 5), 0);
    EXPECT_EQ(id[59], 0x0104);
    // A mode the controller does not have is refused.
    set_reg(reg::kErrorFeature, feature::kSetTransferMode);
    set_reg(reg::kCount, kXferUdma | 5);
    command(cmd::kSetFeatures);
    EXPECT_EQ(status(), kStatusReady | kStatusErr);
    EXPECT_EQ(error(), kErrAbrt);
}

TEST(IdentifyBlock, SerialAndModelAreByteSwappedAndPadded) {
    auto id = build_identify({.sectors = 1000,
                              .serial = "AB\x01"
                                        "C"});
    EXPECT_EQ(id[10], ('A' << 8) | 'B');
    EXPECT_EQ(id[11], (' ' << 8) | 'C');  // non-printable becomes a space
    EXPECT_EQ(id[12], (' ' << 8) | ' ');
    EXPECT_EQ(id[1], 1);  // tiny disks still report one cylinder
}

}  // namespace
}  // namespace rv::test
