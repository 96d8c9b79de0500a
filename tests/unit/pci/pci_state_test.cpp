// Config space and MSI-X state: round trip through bytes, the restored
// function answers and interrupts as the original, and state from another
// device or layout is refused.
#include <gtest/gtest.h>

#include <array>

#include "devices/pci/config_space.h"
#include "devices/pci/msix.h"
#include "snapshot/state_codec.h"
#include "support/fake_msi_router.h"

namespace rv {
namespace {

template <typename S>
S through_bytes(const S& state) {
    auto back = snapshot::decode<S>(snapshot::encode(state), "test");
    EXPECT_TRUE(back.has_value()) << back.error().message();
    return back.value_or(S{});
}

PciConfigSpace make_space(uint16_t device_id = 0x1001, bool io_bar = false) {
    PciConfigSpace c(PciHeader{.vendor_id = 0x1af4, .device_id = device_id, .class_code = 1, .interrupt_pin = 1});
    EXPECT_TRUE(c.add_bar(PciBarInfo{.index = 0, .size = 0x4000, .io = io_bar, .is_64bit = !io_bar}).has_value());
    EXPECT_TRUE(c.add_capability(kPciCapIdVendor, std::array<uint8_t, 2>{1, 2}).has_value());
    return c;
}

void write32(PciConfigSpace& c, uint16_t off, uint32_t v) {
    std::array<uint8_t, 4> b{};
    store_le(b, v);
    c.write(off, b);
}

TEST(PciState, ConfigSpaceRoundTripsWhatTheGuestProgrammed) {
    PciConfigSpace a = make_space();
    write32(a, pci_reg::kBar0, 0xfebf0000);
    write32(a, pci_reg::kBar0 + 4, 0x1);
    write32(a, pci_reg::kCommand, kPciCommandMemory | kPciCommandBusMaster);
    a.write(pci_reg::kInterruptLine, std::array<uint8_t, 1>{11});

    PciConfigSpace b = make_space();
    const auto saved = a.save();
    ASSERT_TRUE(b.restore(through_bytes(saved)).has_value());
    EXPECT_EQ(b.save(), saved);
    EXPECT_EQ(b.bar_address(0), a.bar_address(0));
    EXPECT_EQ(b.bar_address(0), 0x1febf0000u);
    EXPECT_EQ(b.command(), kPciCommandMemory | kPciCommandBusMaster);
    for (uint16_t off = 0; off < kPciConfigSize; off += 4) {
        std::array<uint8_t, 4> x{}, y{};
        a.read(off, x);
        b.read(off, y);
        EXPECT_EQ(x, y) << "offset " << off;
    }
}

TEST(PciState, ConfigSpaceOfAnotherDeviceOrLayoutIsRefused) {
    PciConfigSpace a = make_space(0x1001);
    const auto saved = a.save();
    PciConfigSpace other_device = make_space(0x1000);
    const auto before = other_device.save();
    const auto r = other_device.restore(saved);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind(), ErrorKind::InvalidInput);
    EXPECT_NE(r.error().message().find("1af4:1000"), std::string::npos) << r.error().message();
    EXPECT_EQ(other_device.save(), before);

    PciConfigSpace io_bar = make_space(0x1001, true);
    EXPECT_FALSE(io_bar.restore(saved).has_value()) << "the BAR's type bits differ";

    auto bytes = snapshot::encode(saved);
    bytes.pop_back();
    EXPECT_FALSE(snapshot::decode<PciConfigSpace::State>(bytes, "pci").has_value());
}

void table_write32(MsixTable& t, uint64_t off, uint32_t v) {
    std::array<uint8_t, 4> b{};
    store_le(b, v);
    t.table_write(off, b);
}

TEST(PciState, MsixRestoreRoutesAfreshAndDeliversWhatCanFire) {
    test::FakeMsiRouter router_a, router_b(100);
    MsixTable a(4, router_a);
    a.set_control(true, false);
    for (uint16_t v = 0; v < 3; ++v) {
        table_write32(a, v * 16 + 0, 0xfee00000 | (v << 12));
        table_write32(a, v * 16 + 8, 0x40 + v);
        if (v != 1) table_write32(a, v * 16 + 12, 0);  // vector 1 stays masked
    }
    EXPECT_TRUE(a.trigger(1));  // masked: pending
    ASSERT_TRUE(a.pending(1));

    const auto saved = a.save();
    MsixTable b(4, router_b);
    ASSERT_TRUE(b.restore(through_bytes(saved)).has_value());
    EXPECT_EQ(b.save(), saved);
    EXPECT_TRUE(router_b.triggered().empty()) << "nothing deliverable was pending";
    for (uint16_t v = 0; v < 4; ++v) {
        EXPECT_EQ(b.message(v), a.message(v)) << v;
        EXPECT_EQ(b.vector_masked(v), a.vector_masked(v)) << v;
    }
    // Vector 2 fires at once through a route made on restore.
    ASSERT_TRUE(b.trigger(2));
    ASSERT_EQ(router_b.delivered().size(), 1u);
    EXPECT_EQ(router_b.delivered()[0], (MsiMessage{0xfee02000, 0x42}));
    // Unmasking vector 1 delivers the interrupt pending since before the snapshot.
    table_write32(b, 1 * 16 + 12, 0);
    ASSERT_EQ(router_b.delivered().size(), 2u);
    EXPECT_EQ(router_b.delivered()[1], (MsiMessage{0xfee01000, 0x41}));
}

TEST(PciState, MsixPendingAndDeliverableAtRestoreIsDelivered) {
    test::FakeMsiRouter router;
    MsixTable t(2, router);
    MsixTable::State s;
    s.vectors.resize(2);
    s.vectors[0].words = {0xfee00000, 0, 0x31, 0};
    s.vectors[0].pending = true;
    s.enabled = true;
    ASSERT_TRUE(t.restore(s).has_value());
    ASSERT_EQ(router.delivered().size(), 1u);
    EXPECT_EQ(router.delivered()[0], (MsiMessage{0xfee00000, 0x31}));
    EXPECT_FALSE(t.pending(0));
}

TEST(PciState, MsixOfAnotherSizeOrWithReservedBitsIsRefused) {
    test::FakeMsiRouter router;
    MsixTable t(2, router);
    MsixTable::State s;
    s.vectors.resize(3);
    EXPECT_FALSE(t.restore(s).has_value());
    s.vectors.resize(2);
    s.vectors[1].words[3] = 0x3;
    EXPECT_FALSE(t.restore(s).has_value());

    snapshot::Writer w;
    w.u16(kMsixMaxVectors + 1);
    EXPECT_FALSE(snapshot::decode<MsixTable::State>(w.take(), "msix").has_value());
}

}  // namespace
}  // namespace rv
