#include "devices/pci/msix.h"

#include <gtest/gtest.h>

#include <array>

#include "support/fake_msi_router.h"

namespace rv {
namespace {

void table_write32(MsixTable& t, uint64_t off, uint32_t v) {
    std::array<uint8_t, 4> b{};
    store_le(b, v);
    t.table_write(off, b);
}
uint32_t table_read32(const MsixTable& t, uint64_t off) {
    std::array<uint8_t, 4> b{};
    t.table_read(off, b);
    return load_le(b);
}
uint64_t pba_read64(const MsixTable& t) {
    std::array<uint8_t, 8> b{};
    t.pba_read(0, b);
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
    return v;
}

// Programs vector v the way Linux does: address lo/hi, data, then unmask.
void program(MsixTable& t, uint16_t v, uint64_t addr, uint32_t data, bool unmask = true) {
    table_write32(t, v * 16 + 0, static_cast<uint32_t>(addr));
    table_write32(t, v * 16 + 4, static_cast<uint32_t>(addr >> 32));
    table_write32(t, v * 16 + 8, data);
    if (unmask) table_write32(t, v * 16 + 12, 0);
}

TEST(MsixCapability, Layout) {
    PciConfigSpace c(PciHeader{.vendor_id = 1});
    auto cap = MsixCapability::add_to(c, MsixLayout{.vectors = 5,
                                                    .table_bar = 4,
                                                    .table_offset = 0x4000,
                                                    .pba_bar = 4,
                                                    .pba_offset = 0x5000});
    ASSERT_TRUE(cap);
    uint8_t off = cap->offset();
    EXPECT_EQ(c.read8(pci_reg::kCapabilityPointer), off);
    EXPECT_EQ(c.read8(off), kPciCapIdMsix);
    EXPECT_EQ(c.read16(off + 2), 4);  // table size - 1, disabled, unmasked
    EXPECT_EQ(c.read32(off + 4), 0x4004u);
    EXPECT_EQ(c.read32(off + 8), 0x5004u);
    // Only enable and function mask are writable.
    std::array<uint8_t, 2> all{0xFF, 0xFF};
    c.write(off + 2, all);
    EXPECT_EQ(c.read16(off + 2), 0xC004);
    std::array<uint8_t, 4> zero{};
    c.write(off + 4, zero);
    EXPECT_EQ(c.read32(off + 4), 0x4004u);
    EXPECT_FALSE(MsixCapability::add_to(c, MsixLayout{.vectors = 0}));
    EXPECT_FALSE(MsixCapability::add_to(c, MsixLayout{.vectors = 1, .table_offset = 4}));
}

TEST(MsixCapability, ControlWritesReachTable) {
    PciConfigSpace c(PciHeader{.vendor_id = 1});
    test::FakeMsiRouter router;
    MsixTable table(2, router);
    auto cap = MsixCapability::add_to(c, MsixLayout{.vectors = 2});
    ASSERT_TRUE(cap);
    std::array<uint8_t, 2> enable{0x00, 0x80};
    c.write(cap->offset() + 2, enable);
    cap->config_written(c, cap->offset() + 2, 2, table);
    EXPECT_TRUE(table.enabled());
    EXPECT_FALSE(table.function_masked());
    std::array<uint8_t, 1> hi{0xC0};  // byte write of the upper half
    c.write(cap->offset() + 3, hi);
    cap->config_written(c, cap->offset() + 3, 1, table);
    EXPECT_TRUE(table.function_masked());
    // A write elsewhere does not touch the table state.
    table.set_control(false, false);
    cap->config_written(c, 0x04, 2, table);
    EXPECT_FALSE(table.enabled());
}

TEST(MsixTable, EntriesStartMaskedAndReadBack) {
    test::FakeMsiRouter router;
    MsixTable t(3, router);
    EXPECT_EQ(table_read32(t, 12), 1u);
    EXPECT_EQ(table_read32(t, 2 * 16 + 12), 1u);
    program(t, 1, 0xFEE0'1000, 0x4041, false);
    EXPECT_EQ(table_read32(t, 16), 0xFEE0'1000u);
    EXPECT_EQ(table_read32(t, 24), 0x4041u);
    table_write32(t, 16 + 12, 0xFFFF'FFFF);  // reserved bits read back zero
    EXPECT_EQ(table_read32(t, 16 + 12), 1u);
    EXPECT_EQ(table_read32(t, 3 * 16), 0u);  // past the table
}

TEST(MsixTable, DisabledFallsBack) {
    test::FakeMsiRouter router;
    MsixTable t(2, router);
    program(t, 0, 0xFEE0'0000, 0x30);
    EXPECT_FALSE(t.trigger(0));
    EXPECT_TRUE(router.triggered().empty());
    EXPECT_FALSE(t.pending(0));
}

TEST(MsixTable, DeliversThroughRoute) {
    test::FakeMsiRouter router;
    MsixTable t(2, router);
    t.set_control(true, false);
    program(t, 1, 0xFEE0'2000, 0x41);
    ASSERT_TRUE(t.trigger(1));
    ASSERT_EQ(router.delivered().size(), 1u);
    EXPECT_EQ(router.delivered()[0], (MsiMessage{0xFEE0'2000, 0x41}));
    EXPECT_EQ(router.allocations(), 1u);
    // Vectors past the table are swallowed (MSI-X owns interrupts now).
    EXPECT_TRUE(t.trigger(7));
    EXPECT_EQ(router.triggered().size(), 1u);
}

TEST(MsixTable, RouteFollowsReprogramming) {
    test::FakeMsiRouter router;
    MsixTable t(1, router);
    t.set_control(true, false);
    program(t, 0, 0xFEE0'0000, 0x30);
    ASSERT_TRUE(t.trigger(0));
    // Retarget while unmasked (older Linux does this for affinity changes).
    table_write32(t, 8, 0x31);
    ASSERT_TRUE(t.trigger(0));
    auto d = router.delivered();
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[1], (MsiMessage{0xFEE0'0000, 0x31}));
    EXPECT_EQ(router.allocations(), 1u);  // one GSI per vector, reused
    EXPECT_EQ(router.triggered()[0], router.triggered()[1]);
}

TEST(MsixTable, MaskedVectorPendsAndDeliversOnUnmask) {
    test::FakeMsiRouter router;
    MsixTable t(2, router);
    t.set_control(true, false);
    program(t, 1, 0xFEE0'0000, 0x51, /*unmask=*/false);
    EXPECT_EQ(router.route_updates(), 0u);  // masked entries are not routed yet
    ASSERT_TRUE(t.trigger(1));
    EXPECT_TRUE(router.triggered().empty());
    EXPECT_TRUE(t.pending(1));
    EXPECT_EQ(pba_read64(t), 0b10u);
    table_write32(t, 16 + 12, 0);  // unmask
    EXPECT_FALSE(t.pending(1));
    EXPECT_EQ(pba_read64(t), 0u);
    ASSERT_EQ(router.delivered().size(), 1u);
    EXPECT_EQ(router.delivered()[0], (MsiMessage{0xFEE0'0000, 0x51}));
    // Unmasking again with nothing pending delivers nothing.
    table_write32(t, 16 + 12, 1);
    table_write32(t, 16 + 12, 0);
    EXPECT_EQ(router.triggered().size(), 1u);
}

TEST(MsixTable, FunctionMask) {
    test::FakeMsiRouter router;
    MsixTable t(2, router);
    t.set_control(true, true);
    program(t, 0, 0xFEE0'0000, 0x60);
    ASSERT_TRUE(t.trigger(0));
    EXPECT_TRUE(t.pending(0));
    EXPECT_TRUE(router.triggered().empty());
    t.set_control(true, false);
    EXPECT_FALSE(t.pending(0));
    ASSERT_EQ(router.delivered().size(), 1u);
    EXPECT_EQ(router.delivered()[0].data, 0x60u);
}

TEST(MsixTable, EnableRoutesProgrammedVectors) {
    test::FakeMsiRouter router;
    MsixTable t(2, router);
    program(t, 0, 0xFEE0'0000, 0x70);
    EXPECT_EQ(router.route_updates(), 0u);
    t.set_control(true, false);
    ASSERT_TRUE(t.trigger(0));
    ASSERT_EQ(router.delivered().size(), 1u);
    EXPECT_EQ(router.delivered()[0], (MsiMessage{0xFEE0'0000, 0x70}));
}

TEST(MsixTable, GsiExhaustionIsNotFatal) {
    test::FakeMsiRouter router(24, 1);
    MsixTable t(2, router);
    t.set_control(true, false);
    program(t, 0, 0xFEE0'0000, 0x30);
    program(t, 1, 0xFEE0'0000, 0x31);
    EXPECT_TRUE(t.trigger(1));  // no GSI: dropped, logged
    EXPECT_TRUE(router.triggered().empty());
    EXPECT_TRUE(t.trigger(0));
    EXPECT_EQ(router.triggered().size(), 1u);
}

TEST(MsixTable, Qword64BitAccess) {
    test::FakeMsiRouter router;
    MsixTable t(1, router);
    std::array<uint8_t, 8> b{};
    store_le(b, 0x0000'0001'FEE0'3000ull);
    t.table_write(0, b);
    EXPECT_EQ(t.message(0).address, 0x1'FEE0'3000u);
    std::array<uint8_t, 8> out{};
    t.table_read(0, out);
    EXPECT_EQ(out, b);
}

}  // namespace
}  // namespace rv
