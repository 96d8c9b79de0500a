// A guest can write a colliding BAR address on every config-space exit. The
// refusal is logged under the PCI root's lock, so the log must stay bounded
// however often the guest repeats it.
#include <gtest/gtest.h>

#include <mutex>

#include "devices/pci/config_space.h"
#include "devices/pci/pci_root.h"
#include "support/bus_access.h"
#include "support/log_capture.h"

namespace rv {
namespace {

constexpr int kBadWrites = 10'000;
constexpr size_t kMaxLines = 20;

class BarDevice final : public PciDevice {
  public:
    explicit BarDevice(PciBarInfo bar) : m_config(PciHeader{.vendor_id = 0x1AF4}) {
        EXPECT_TRUE(m_config.add_bar(bar));
    }
    std::string_view name() const override { return "bar-device"; }
    void config_read(uint16_t offset, std::span<uint8_t> data) override {
        std::lock_guard lock(m_lock);
        m_config.read(offset, data);
    }
    void config_write(uint16_t offset, std::span<const uint8_t> data) override {
        std::lock_guard lock(m_lock);
        m_config.write(offset, data);
    }
    std::vector<PciBarInfo> bars() const override { return m_config.bars(); }
    void bar_read(uint8_t, uint64_t, std::span<uint8_t> data) override {
        std::fill(data.begin(), data.end(), 0);
    }
    void bar_write(uint8_t, uint64_t, std::span<const uint8_t>) override {}

  private:
    std::mutex m_lock;
    PciConfigSpace m_config;
};

struct NullBusDevice final : BusDevice {
    std::string_view name() const override { return "legacy"; }
    void read(uint64_t, std::span<uint8_t> data) override {
        std::fill(data.begin(), data.end(), 0);
    }
    void write(uint64_t, std::span<const uint8_t>) override {}
};

struct PciRootFlood : ::testing::Test {
    MmioBus mmio;
    PioBus pio;
    std::shared_ptr<PciRoot> root = PciRoot::create(mmio, pio, {});
    test::LogCapture log;

    void cfg_write32(uint8_t slot, uint8_t reg, uint32_t value) {
        test::write32(*root, 0, 0x8000'0000u | (uint32_t{slot} << 11) | reg);
        test::write32(*root, 4, value);
    }
};

TEST_F(PciRootFlood, BarMovedOntoAnotherBar) {
    ASSERT_TRUE(
        root->add_device(std::make_shared<BarDevice>(PciBarInfo{.index = 0, .size = 0x1000})));
    ASSERT_TRUE(
        root->add_device(std::make_shared<BarDevice>(PciBarInfo{.index = 0, .size = 0x2000})));
    ASSERT_TRUE(root->allocate_bars(PciWindows{}));
    uint64_t mine = *root->bar_address(1, 0);
    uint64_t other = *root->bar_address(2, 0);
    for (int i = 0; i < kBadWrites; ++i) {
        // Alternately the same base and one overlapping the other BAR's second page.
        uint64_t target = i % 2 ? other : other + 0x1000;
        cfg_write32(1, 0x10, static_cast<uint32_t>(target));
    }
    EXPECT_EQ(root->bar_address(1, 0), mine) << "the refused BAR keeps decoding where it was";
    EXPECT_EQ(root->bar_address(2, 0), other);
    EXPECT_GE(log.count("cannot move"), 1u) << "the first refusals are still logged";
    EXPECT_LE(log.count(), kMaxLines);
}

// An I/O BAR moved onto ports a legacy device decodes (the keyboard
// controller's, say): refused, as a colliding MMIO BAR is.
TEST_F(PciRootFlood, IoBarOntoLegacyPorts) {
    constexpr uint64_t kLegacyPorts = 0x60;
    ASSERT_TRUE(pio.insert(std::make_shared<NullBusDevice>(), PioAddress{kLegacyPorts}, 0x10));
    ASSERT_TRUE(root->add_device(
        std::make_shared<BarDevice>(PciBarInfo{.index = 0, .size = 0x10, .io = true})));
    ASSERT_TRUE(root->allocate_bars(PciWindows{}));
    uint64_t mine = *root->bar_address(1, 0);
    for (int i = 0; i < kBadWrites; ++i)
        cfg_write32(1, 0x10, static_cast<uint32_t>(kLegacyPorts) | 1u);
    EXPECT_EQ(root->bar_address(1, 0), mine);
    EXPECT_GE(log.count("cannot move"), 1u);
    EXPECT_LE(log.count(), kMaxLines);
}

}  // namespace
}  // namespace rv
