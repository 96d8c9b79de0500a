#include "devices/pci/pci_root.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <set>

#include "devices/pci/config_space.h"
#include "support/bus_access.h"
#include "support/recording_irq_line.h"

namespace rv {
namespace {

using test::read16;
using test::read32;
using test::read8;
using test::write32;

// A device with configurable BARs whose BAR accesses echo the offset, so a
// test can tell which BAR at which offset a bus access reached.
class FakePciDevice final : public PciDevice {
  public:
    explicit FakePciDevice(std::vector<PciBarInfo> bars, uint8_t pin = 1)
        : m_config(PciHeader{.vendor_id = 0x1AF4, .device_id = 0x1000, .interrupt_pin = pin}) {
        for (const auto& b : bars) EXPECT_TRUE(m_config.add_bar(b));
    }
    std::string_view name() const override { return "fake"; }
    void config_read(uint16_t offset, std::span<uint8_t> data) override {
        std::lock_guard lock(m_lock);
        m_config.read(offset, data);
    }
    void config_write(uint16_t offset, std::span<const uint8_t> data) override {
        std::lock_guard lock(m_lock);
        m_config.write(offset, data);
    }
    std::vector<PciBarInfo> bars() const override { return m_config.bars(); }
    void bar_moved(uint8_t index, uint64_t address) override {
        std::lock_guard lock(m_lock);
        moves.emplace_back(index, address);
    }
    void bar_read(uint8_t index, uint64_t offset, std::span<uint8_t> data) override {
        // Byte 0: 0xB0 + BAR index; bytes 1..: low bytes of the offset.
        std::fill(data.begin(), data.end(), 0);
        data[0] = static_cast<uint8_t>(0xB0 + index);
        if (data.size() >= 4) store_le(data.subspan(1, 3), offset);
    }
    void bar_write(uint8_t, uint64_t, std::span<const uint8_t>) override {}

    std::mutex m_lock;
    PciConfigSpace m_config;
    std::vector<std::pair<uint8_t, uint64_t>> moves;
};

struct RootFixture : ::testing::Test {
    MmioBus mmio;
    PioBus pio;
    std::map<unsigned, std::shared_ptr<test::RecordingIrqLine>> lines;
    std::shared_ptr<PciRoot> root = PciRoot::create(mmio, pio, [this](unsigned irq) {
        auto line = std::make_shared<test::RecordingIrqLine>();
        lines[irq] = line;
        return line;
    });

    void select(uint8_t slot, uint8_t reg, uint8_t fn = 0, uint8_t bus = 0, bool enable = true) {
        uint32_t addr = (enable ? 0x8000'0000u : 0) | (uint32_t{bus} << 16) |
                        (uint32_t{slot} << 11) | (uint32_t{fn} << 8) | reg;
        write32(*root, 0, addr);
    }
    uint32_t cfg_read32(uint8_t slot, uint8_t reg) {
        select(slot, reg);
        return read32(*root, 4);
    }
    void cfg_write32(uint8_t slot, uint8_t reg, uint32_t value) {
        select(slot, reg);
        write32(*root, 4, value);
    }
    uint8_t mmio_tag(uint64_t addr) {
        std::array<uint8_t, 4> b{};
        mmio.read(MmioAddress{addr}, b);
        return b[0];
    }
};

TEST_F(RootFixture, HostBridgeThroughCf8) {
    EXPECT_EQ(cfg_read32(0, 0x00), 0x29C0'8086u);
    EXPECT_EQ(cfg_read32(0, 0x08) >> 8, 0x06'00'00u);  // class: host bridge
    // CONFIG_ADDRESS reads back with reserved bits cleared.
    write32(*root, 0, 0xFFFF'FFFF);
    EXPECT_EQ(read32(*root, 0), 0x80FF'FFFCu);
}

TEST_F(RootFixture, EnableBitAndAbsentFunctions) {
    select(0, 0x00, 0, 0, /*enable=*/false);
    EXPECT_EQ(read32(*root, 4), 0xFFFF'FFFFu);
    EXPECT_EQ(cfg_read32(5, 0x00), 0xFFFF'FFFFu);  // empty slot
    select(0, 0x00, /*fn=*/1);
    EXPECT_EQ(read32(*root, 4), 0xFFFF'FFFFu);
    select(0, 0x00, 0, /*bus=*/1);
    EXPECT_EQ(read32(*root, 4), 0xFFFF'FFFFu);
    // Writes with the enable bit clear go nowhere.
    auto dev = std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{});
    ASSERT_EQ(*root->add_device(dev), 1);
    select(1, 0x3C, 0, 0, false);
    test::write8(*root, 4, 0x77);
    EXPECT_NE(cfg_read32(1, 0x3C) & 0xFF, 0x77u);
}

TEST_F(RootFixture, SubDwordDataAccesses) {
    select(0, 0x00);
    EXPECT_EQ(read8(*root, 4), 0x86);
    EXPECT_EQ(read8(*root, 5), 0x80);
    EXPECT_EQ(read16(*root, 6), 0x29C0);  // 0xCFE: device id
    EXPECT_EQ(read8(*root, 7), 0x29);
    select(0, 0x08);
    EXPECT_EQ(read8(*root, 7), 0x06);  // class code at 0x0B via 0xCFF
    auto dev = std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{});
    ASSERT_TRUE(root->add_device(dev));
    select(1, 0x3C);
    test::write8(*root, 4, 0x0A);     // interrupt line via 0xCFC
    test::write16(*root, 5, 0x0302);  // 0xCFD: 0x3D pin (read-only) and 0x3E
    EXPECT_EQ(read8(*root, 4), 0x0A);
    EXPECT_EQ(read8(*root, 5), 1);
    // Byte writes to CONFIG_ADDRESS do not latch (0xCF9 is reset control on PCs).
    test::write8(*root, 1, 0x12);
    EXPECT_EQ(read32(*root, 0), 0x8000'083Cu);
}

TEST_F(RootFixture, SlotsAndInterruptLines) {
    auto a = std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{});
    auto b = std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{});
    auto c = std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{});
    auto d = std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{});
    auto none = std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{}, /*pin=*/0);
    EXPECT_EQ(*root->add_device(a), 1);
    EXPECT_EQ(*root->add_device(b), 2);
    EXPECT_EQ(*root->add_device(c), 3);
    EXPECT_EQ(*root->add_device(d), 4);
    EXPECT_EQ(*root->add_device(none), 5);
    std::vector<unsigned> irqs;
    for (uint8_t s = 1; s <= 4; ++s) irqs.push_back(cfg_read32(s, 0x3C) & 0xFF);
    // Above the ISA IRQs, one I/O APIC input per slot (mod 8).
    EXPECT_EQ(irqs, (std::vector<unsigned>{17, 18, 19, 20}));
    EXPECT_EQ(cfg_read32(5, 0x3C) & 0xFF, 0u);
    EXPECT_EQ(root->intx_line(5), nullptr);
    EXPECT_EQ(root->intx_line(9), nullptr);
    // --stats walks the devices in slot order.
    std::vector<std::pair<uint8_t, std::shared_ptr<PciDevice>>> want{
        {1, a}, {2, b}, {3, c}, {4, d}, {5, none}};
    auto listed = root->devices();
    ASSERT_EQ(listed.size(), 6u);
    EXPECT_EQ(listed[0].first, 0);  // the host bridge
    EXPECT_EQ(listed[0].second->name(), "pci-host-bridge");
    listed.erase(listed.begin());
    EXPECT_EQ(listed, want);
}

TEST_F(RootFixture, SharedIntxIsWiredOr) {
    for (int i = 0; i < 9; ++i)
        ASSERT_TRUE(root->add_device(std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{})));
    auto l1 = root->intx_line(1);
    auto l4 = root->intx_line(9);  // also GSI 17: eight inputs for 31 slots
    ASSERT_TRUE(l1 && l4);
    auto& irq17 = *lines.at(17);
    l1->set_level(true);
    EXPECT_TRUE(irq17.level());
    l4->set_level(true);
    l1->set_level(false);
    EXPECT_TRUE(irq17.level());  // slot 9 still asserts
    l4->set_level(false);
    EXPECT_FALSE(irq17.level());
    EXPECT_EQ(irq17.rising_edges(), 1u);
}

TEST_F(RootFixture, BarAllocationAlignedAndDisjoint) {
    auto a = std::make_shared<FakePciDevice>(
        std::vector<PciBarInfo>{{.index = 0, .size = 0x1000},
                                {.index = 1, .size = 0x100'0000},
                                {.index = 2, .size = 0x20, .io = true}});
    auto b = std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{
        {.index = 0, .size = 0x10}, {.index = 4, .size = 0x8000, .is_64bit = true}});
    auto c = std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{
        {.index = 2, .size = 0x4000, .is_64bit = true, .prefetchable = true},
        {.index = 0, .size = 0x100, .io = true}});
    ASSERT_TRUE(root->add_device(a));
    ASSERT_TRUE(root->add_device(b));
    ASSERT_TRUE(root->add_device(c));
    PciWindows w{.mmio64_start = 0x1'0000'0000, .mmio64_end = 0x2'0000'0000};
    ASSERT_TRUE(root->allocate_bars(w));

    struct Placed {
        uint8_t slot;
        PciBarInfo bar;
        uint64_t addr;
    };
    std::vector<Placed> placed;
    std::array<std::shared_ptr<FakePciDevice>, 3> devs{a, b, c};
    for (uint8_t s = 1; s <= 3; ++s)
        for (const auto& bar : devs[s - 1]->bars()) {
            auto addr = root->bar_address(s, bar.index);
            ASSERT_TRUE(addr);
            placed.push_back({s, bar, *addr});
            // The BAR register holds the address (what the guest reads).
            uint64_t reg = cfg_read32(s, 0x10 + 4 * bar.index) & (bar.io ? ~0x3u : ~0xFu);
            if (bar.is_64bit) reg |= uint64_t{cfg_read32(s, 0x14 + 4 * bar.index)} << 32;
            EXPECT_EQ(reg, *addr);
            EXPECT_EQ(*addr % bar.size, 0u) << "slot " << int(s) << " BAR " << int(bar.index);
            if (bar.io) {
                EXPECT_GE(*addr, w.io_start);
                EXPECT_LE(*addr + bar.size, w.io_end);
            } else if (bar.is_64bit) {
                EXPECT_GE(*addr, w.mmio64_start);
            } else {
                EXPECT_GE(*addr, w.mmio32_start);
                EXPECT_LE(*addr + bar.size, w.mmio32_end);
            }
        }
    for (size_t i = 0; i < placed.size(); ++i)
        for (size_t j = i + 1; j < placed.size(); ++j) {
            if (placed[i].bar.io != placed[j].bar.io) continue;
            bool disjoint = placed[i].addr + placed[i].bar.size <= placed[j].addr ||
                            placed[j].addr + placed[j].bar.size <= placed[i].addr;
            EXPECT_TRUE(disjoint);
        }
    // Mapped on the right bus, reaching the right BAR; devices were told.
    EXPECT_EQ(mmio_tag(*root->bar_address(2, 4) + 0x10), 0xB4);
    std::array<uint8_t, 4> io{};
    EXPECT_TRUE(pio.read(PioAddress{*root->bar_address(1, 2) + 4}, io));
    EXPECT_EQ(io[0], 0xB2);
    EXPECT_EQ(io[1], 4);
    EXPECT_EQ(b->moves.size(), 2u);
    // Decoding enabled as firmware leaves it.
    EXPECT_EQ(cfg_read32(1, 0x04) & 0x3, 0x3u);
    EXPECT_EQ(cfg_read32(2, 0x04) & 0x3, 0x2u);
}

TEST_F(RootFixture, AllocationFailsWhenWindowTooSmall) {
    ASSERT_TRUE(root->add_device(std::make_shared<FakePciDevice>(
        std::vector<PciBarInfo>{{.index = 0, .size = 0x1000'0000}})));
    EXPECT_FALSE(
        root->allocate_bars(PciWindows{.mmio32_start = 0xF000'0000, .mmio32_end = 0xF800'0000}));
}

TEST_F(RootFixture, GuestMovesBar) {
    auto dev =
        std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{{.index = 0, .size = 0x1000}});
    auto other =
        std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{{.index = 0, .size = 0x1000}});
    ASSERT_TRUE(root->add_device(dev));
    ASSERT_TRUE(root->add_device(other));
    ASSERT_TRUE(root->allocate_bars(PciWindows{}));
    uint64_t old = *root->bar_address(1, 0);
    uint64_t other_addr = *root->bar_address(2, 0);
    ASSERT_EQ(mmio_tag(old), 0xB0);

    // Linux's sizing dance with decode off: nothing moves.
    cfg_write32(1, 0x04, 0);
    cfg_write32(1, 0x10, 0xFFFF'FFFF);
    EXPECT_EQ(cfg_read32(1, 0x10), 0xFFFF'F000u);
    EXPECT_EQ(root->bar_address(1, 0), old);
    cfg_write32(1, 0x10, static_cast<uint32_t>(old));
    EXPECT_EQ(root->bar_address(1, 0), old);
    EXPECT_EQ(mmio_tag(old), 0xB0);

    // A real move: the new address decodes, the old one does not.
    uint64_t moved = 0xD000'0000;
    cfg_write32(1, 0x10, static_cast<uint32_t>(moved));
    EXPECT_EQ(root->bar_address(1, 0), moved);
    EXPECT_EQ(mmio_tag(moved + 0x20), 0xB0);
    std::array<uint8_t, 4> b{};
    EXPECT_FALSE(mmio.read(MmioAddress{old}, b));
    ASSERT_FALSE(dev->moves.empty());
    EXPECT_EQ(dev->moves.back(), std::make_pair(uint8_t{0}, moved));

    // Onto another device's BAR: refused, the old mapping stays.
    cfg_write32(1, 0x10, static_cast<uint32_t>(other_addr));
    EXPECT_EQ(root->bar_address(1, 0), moved);
    EXPECT_EQ(mmio_tag(moved), 0xB0);
    EXPECT_EQ(root->bar_address(2, 0), other_addr);
}

// The observer (how the VMM keeps coalesced MMIO zones on the BARs) hears
// of every mapping and unmapping, so what it tracks matches the buses.
TEST_F(RootFixture, BarObserverFollowsEveryMapping) {
    std::set<std::pair<uint8_t, uint64_t>> mapped;  // (BAR index, address)
    int events = 0;
    root->set_bar_observer([&](const PciDevice& d, const PciBarInfo& bar, uint64_t addr, bool on) {
        EXPECT_EQ(d.name(), "fake");
        ++events;
        auto key = std::make_pair(bar.index, addr);
        if (on)
            EXPECT_TRUE(mapped.insert(key).second) << "mapped twice at " << addr;
        else
            EXPECT_EQ(mapped.erase(key), 1u) << "unmapped but not mapped at " << addr;
    });
    auto dev = std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{
        {.index = 0, .size = 0x1000}, {.index = 1, .size = 0x20, .io = true}});
    auto other =
        std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{{.index = 0, .size = 0x1000}});
    ASSERT_TRUE(root->add_device(dev));
    ASSERT_TRUE(root->add_device(other));
    ASSERT_TRUE(root->allocate_bars(PciWindows{}));
    auto expected = [&] {
        return std::set<std::pair<uint8_t, uint64_t>>{{0, *root->bar_address(1, 0)},
                                                      {1, *root->bar_address(1, 1)},
                                                      {0, *root->bar_address(2, 0)}};
    };
    EXPECT_EQ(mapped, expected());
    EXPECT_EQ(events, 3);

    cfg_write32(1, 0x10, 0xD000'0000);  // a move
    EXPECT_EQ(root->bar_address(1, 0), 0xD000'0000u);
    EXPECT_EQ(mapped, expected());
    cfg_write32(1, 0x10, static_cast<uint32_t>(*root->bar_address(2, 0)));  // refused
    EXPECT_EQ(root->bar_address(1, 0), 0xD000'0000u);
    EXPECT_EQ(mapped, expected());
}

TEST_F(RootFixture, Guest64BitBarMove) {
    auto dev = std::make_shared<FakePciDevice>(
        std::vector<PciBarInfo>{{.index = 4, .size = 0x8000, .is_64bit = true}});
    ASSERT_TRUE(root->add_device(dev));
    ASSERT_TRUE(root->allocate_bars(
        PciWindows{.mmio64_start = 0x1'0000'0000, .mmio64_end = 0x2'0000'0000}));
    uint64_t old = *root->bar_address(1, 4);
    EXPECT_EQ(old, 0x1'0000'0000u);
    // Size both halves, then program a new address low half first.
    cfg_write32(1, 0x20, 0xFFFF'FFFF);
    cfg_write32(1, 0x20, static_cast<uint32_t>(old));
    cfg_write32(1, 0x24, 0xFFFF'FFFF);
    EXPECT_EQ(cfg_read32(1, 0x24), 0xFFFF'FFFFu);
    cfg_write32(1, 0x24, static_cast<uint32_t>(old >> 32));
    EXPECT_EQ(root->bar_address(1, 4), old);
    EXPECT_EQ(dev->moves.size(), 1u);
    cfg_write32(1, 0x20, 0x0008'0000);
    cfg_write32(1, 0x24, 0x3);
    EXPECT_EQ(root->bar_address(1, 4), 0x3'0008'0000u);
    EXPECT_EQ(mmio_tag(0x3'0008'0000u), 0xB4);
    EXPECT_EQ(mmio_tag(old), 0);
    EXPECT_EQ(mmio.size(), 1u);
}

TEST_F(RootFixture, EcamAccess) {
    auto dev = std::make_shared<FakePciDevice>(std::vector<PciBarInfo>{});
    ASSERT_TRUE(root->add_device(dev));
    auto ecam = root->ecam();
    EXPECT_EQ(read32(*ecam, 0), 0x29C0'8086u);
    EXPECT_EQ(read16(*ecam, (1u << 15) + 0), 0x1AF4);
    EXPECT_EQ(read32(*ecam, (2u << 15)), 0xFFFF'FFFFu);
    EXPECT_EQ(read32(*ecam, (1u << 15) | (1u << 12)), 0xFFFF'FFFFu);  // function 1
    EXPECT_EQ(read32(*ecam, (1u << 15) + 0x100), 0u);                 // no extended capabilities
    EXPECT_EQ(read32(*ecam, 2), 0xFFFF'FFFFu);                        // misaligned
    test::write8(*ecam, (1u << 15) + 0x3C, 0x0B);
    EXPECT_EQ(cfg_read32(1, 0x3C) & 0xFF, 0x0Bu);
}

}  // namespace
}  // namespace rv
