#include "devices/pci/config_space.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace rv {
namespace {

PciConfigSpace make_space() {
    return PciConfigSpace(PciHeader{.vendor_id = 0x1234,
                                    .device_id = 0x5678,
                                    .revision = 3,
                                    .class_code = 0x02,
                                    .subclass = 0x00,
                                    .prog_if = 0x01,
                                    .subsystem_vendor_id = 0xABCD,
                                    .subsystem_id = 0xEF01,
                                    .interrupt_pin = 1});
}

uint32_t read32(const PciConfigSpace& c, uint16_t off) {
    std::array<uint8_t, 4> b{};
    c.read(off, b);
    return load_le(b);
}
void write32(PciConfigSpace& c, uint16_t off, uint32_t v) {
    std::array<uint8_t, 4> b{};
    store_le(b, v);
    c.write(off, b);
}
void write16(PciConfigSpace& c, uint16_t off, uint16_t v) {
    std::array<uint8_t, 2> b{};
    store_le(b, v);
    c.write(off, b);
}

TEST(PciConfigSpace, HeaderFields) {
    auto c = make_space();
    EXPECT_EQ(read32(c, 0x00), 0x5678'1234u);
    EXPECT_EQ(read32(c, 0x08), 0x0200'0103u);  // class, subclass, prog-if, revision
    EXPECT_EQ(read32(c, 0x2C), 0xEF01'ABCDu);
    EXPECT_EQ(c.read8(pci_reg::kInterruptPin), 1);
    EXPECT_EQ(c.read8(pci_reg::kHeaderType), 0);
    EXPECT_EQ(c.read16(pci_reg::kStatus) & kPciStatusCapList, 0);  // no capabilities yet
}

TEST(PciConfigSpace, ReadOnlyFieldsIgnoreWrites) {
    auto c = make_space();
    write32(c, 0x00, 0xFFFF'FFFF);
    write32(c, 0x08, 0xFFFF'FFFF);
    write32(c, 0x2C, 0);
    write16(c, pci_reg::kStatus, 0xFFFF);
    c.write(pci_reg::kInterruptPin, std::array<uint8_t, 1>{4});
    EXPECT_EQ(read32(c, 0x00), 0x5678'1234u);
    EXPECT_EQ(read32(c, 0x08), 0x0200'0103u);
    EXPECT_EQ(read32(c, 0x2C), 0xEF01'ABCDu);
    EXPECT_EQ(c.read16(pci_reg::kStatus), 0);
    EXPECT_EQ(c.read8(pci_reg::kInterruptPin), 1);
    // Unimplemented BARs and the expansion ROM stay zero.
    write32(c, 0x10, 0xFFFF'FFFF);
    write32(c, 0x30, 0xFFFF'FFFF);
    EXPECT_EQ(read32(c, 0x10), 0u);
    EXPECT_EQ(read32(c, 0x30), 0u);
}

TEST(PciConfigSpace, WritableFields) {
    auto c = make_space();
    write16(c, pci_reg::kCommand, 0xFFFF);
    EXPECT_EQ(c.command(),
              kPciCommandIo | kPciCommandMemory | kPciCommandBusMaster | kPciCommandIntxDisable);
    c.write(pci_reg::kInterruptLine, std::array<uint8_t, 1>{11});
    EXPECT_EQ(c.read8(pci_reg::kInterruptLine), 11);
}

TEST(PciConfigSpace, Bar32Sizing) {
    auto c = make_space();
    ASSERT_TRUE(c.add_bar({.index = 0, .size = 0x1000, .prefetchable = true}));
    EXPECT_EQ(read32(c, 0x10), 0x8u);  // prefetchable, 32-bit, memory
    write32(c, 0x10, 0xFFFF'FFFF);
    EXPECT_EQ(read32(c, 0x10), 0xFFFF'F008u);
    EXPECT_TRUE(c.bar_is_sizing(0));
    write32(c, 0x10, 0xC000'1234);
    EXPECT_EQ(read32(c, 0x10), 0xC000'1008u);  // low bits inside the size stay zero
    EXPECT_EQ(c.bar_address(0), 0xC000'1000u);
    EXPECT_FALSE(c.bar_is_sizing(0));
}

TEST(PciConfigSpace, Bar64Sizing) {
    auto c = make_space();
    ASSERT_TRUE(c.add_bar({.index = 2, .size = 0x4000, .is_64bit = true}));
    EXPECT_EQ(read32(c, 0x18), 0x4u);
    write32(c, 0x18, 0xFFFF'FFFF);
    write32(c, 0x1C, 0xFFFF'FFFF);
    EXPECT_EQ(read32(c, 0x18), 0xFFFF'C004u);
    EXPECT_EQ(read32(c, 0x1C), 0xFFFF'FFFFu);
    write32(c, 0x18, 0x0000'8000);
    EXPECT_TRUE(c.bar_is_sizing(2));  // upper half still all-ones
    write32(c, 0x1C, 0x0000'0001);
    EXPECT_EQ(c.bar_address(2), 0x1'0000'8000u);
    EXPECT_FALSE(c.bar_is_sizing(2));
    // A large 64-bit BAR: part of the upper half is size bits.
    auto d = make_space();
    ASSERT_TRUE(d.add_bar({.index = 0, .size = 1ull << 33, .is_64bit = true}));
    write32(d, 0x10, 0xFFFF'FFFF);
    write32(d, 0x14, 0xFFFF'FFFF);
    EXPECT_EQ(read32(d, 0x10), 0x4u);
    EXPECT_EQ(read32(d, 0x14), 0xFFFF'FFFEu);
}

TEST(PciConfigSpace, IoBarSizing) {
    auto c = make_space();
    ASSERT_TRUE(c.add_bar({.index = 1, .size = 0x20, .io = true}));
    EXPECT_EQ(read32(c, 0x14), 0x1u);
    write32(c, 0x14, 0xFFFF'FFFF);
    EXPECT_EQ(read32(c, 0x14), 0x0000'FFE1u);
    write32(c, 0x14, 0xC040);
    EXPECT_EQ(c.bar_address(1), 0xC040u);
}

TEST(PciConfigSpace, BadBarsRejected) {
    auto c = make_space();
    EXPECT_FALSE(c.add_bar({.index = 0, .size = 0x1800}));
    EXPECT_FALSE(c.add_bar({.index = 0, .size = 8}));
    EXPECT_FALSE(c.add_bar({.index = 5, .size = 0x1000, .is_64bit = true}));
    EXPECT_FALSE(c.add_bar({.index = 0, .size = 0x10, .io = true, .is_64bit = true}));
    ASSERT_TRUE(c.add_bar({.index = 0, .size = 0x1000, .is_64bit = true}));
    EXPECT_FALSE(c.add_bar({.index = 1, .size = 0x1000}));  // upper half of BAR 0
}

TEST(PciConfigSpace, CapabilityChain) {
    auto c = make_space();
    std::vector<uint8_t> a{0xAA, 0xBB, 0xCC};
    std::vector<uint8_t> b(14, 0x11);
    std::vector<uint8_t> mask(14, 0);
    mask[3] = 0xFF;
    auto off_a = c.add_capability(0x09, a);
    auto off_b = c.add_capability(0x11, b, mask);
    ASSERT_TRUE(off_a && off_b);
    EXPECT_TRUE(c.read16(pci_reg::kStatus) & kPciStatusCapList);
    // Walk the list the way a guest does.
    std::vector<std::pair<uint8_t, uint8_t>> found;  // (offset, id)
    uint8_t at = c.read8(pci_reg::kCapabilityPointer);
    for (int guard = 0; at != 0 && guard < 48; ++guard) {
        EXPECT_EQ(at % 4, 0);
        EXPECT_GE(at, 0x40);
        found.push_back({at, c.read8(at)});
        at = c.read8(at + 1);
    }
    ASSERT_EQ(found.size(), 2u);
    EXPECT_EQ(found[0], std::make_pair(*off_a, uint8_t{0x09}));
    EXPECT_EQ(found[1], std::make_pair(*off_b, uint8_t{0x11}));
    EXPECT_EQ(c.read8(*off_a + 2), 0xAA);
    EXPECT_EQ(c.read8(*off_a + 4), 0xCC);
    // Only the masked byte of capability b is writable; id/next never are.
    write32(c, *off_b + 4, 0x5555'5555);
    write16(c, *off_b, 0);
    EXPECT_EQ(read32(c, *off_b + 4), 0x1111'5511u);
    EXPECT_EQ(c.read8(*off_b), 0x11);
    EXPECT_EQ(c.read8(*off_a + 1), *off_b);
}

TEST(PciConfigSpace, CapabilityOverflowRejected) {
    auto c = make_space();
    std::vector<uint8_t> big(100, 0);
    EXPECT_TRUE(c.add_capability(0x09, big));
    EXPECT_FALSE(c.add_capability(0x09, big));
}

TEST(PciConfigSpace, OutOfRangeAccess) {
    auto c = make_space();
    std::array<uint8_t, 4> b{1, 2, 3, 4};
    c.read(0xFE, b);  // last two bytes past the end
    EXPECT_EQ(b[2], 0);
    EXPECT_EQ(b[3], 0);
    c.write(0x200, b);  // ignored, no crash
}

}  // namespace
}  // namespace rv
