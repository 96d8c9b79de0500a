#include "bus/bus.h"

#include <gtest/gtest.h>

#include <vector>

namespace rv {
namespace {

class FakeDevice : public BusDevice {
public:
    explicit FakeDevice(std::string name) : m_name(std::move(name)) {}
    std::string_view name() const override { return m_name; }
    void read(uint64_t offset, std::span<uint8_t> data) override {
        last_read_offset = offset;
        for (auto& b : data) b = static_cast<uint8_t>(0xa0 + offset);
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        last_write_offset = offset;
        written.assign(data.begin(), data.end());
    }
    uint64_t last_read_offset{~0ull};
    uint64_t last_write_offset{~0ull};
    std::vector<uint8_t> written;

private:
    std::string m_name;
};

TEST(Bus, DispatchesWithRelativeOffsets) {
    PioBus bus;
    auto uart = std::make_shared<FakeDevice>("uart");
    auto rtc = std::make_shared<FakeDevice>("rtc");
    ASSERT_TRUE(bus.insert(uart, PioAddress(0x3f8), 8));
    ASSERT_TRUE(bus.insert(rtc, PioAddress(0x70), 2));
    uint8_t b = 0;
    EXPECT_TRUE(bus.read(PioAddress(0x3fd), std::span(&b, 1)));
    EXPECT_EQ(uart->last_read_offset, 5u);
    EXPECT_EQ(b, 0xa5);
    const uint8_t v = 0x42;
    EXPECT_TRUE(bus.write(PioAddress(0x71), std::span(&v, 1)));
    EXPECT_EQ(rtc->last_write_offset, 1u);
    EXPECT_EQ(rtc->written, std::vector<uint8_t>{0x42});
}

TEST(Bus, UnclaimedReadsAreZeroAndWritesDropped) {
    PioBus bus;
    auto dev = std::make_shared<FakeDevice>("dev");
    ASSERT_TRUE(bus.insert(dev, PioAddress(0x100), 4));
    uint32_t v = 0xffffffff;
    EXPECT_FALSE(bus.read(PioAddress(0x200), std::span(reinterpret_cast<uint8_t*>(&v), 4)));
    EXPECT_EQ(v, 0u);
    // An access straddling the end of a range is not the device's.
    EXPECT_FALSE(bus.read(PioAddress(0x102), std::span(reinterpret_cast<uint8_t*>(&v), 4)));
    EXPECT_EQ(dev->last_read_offset, ~0ull);
    const uint8_t b = 1;
    EXPECT_FALSE(bus.write(PioAddress(0xff), std::span(&b, 1)));
    EXPECT_EQ(dev->last_write_offset, ~0ull);
}

TEST(Bus, RejectsOverlaps) {
    MmioBus bus;
    auto a = std::make_shared<FakeDevice>("a");
    ASSERT_TRUE(bus.insert(a, MmioAddress(0x1000), 0x100));
    auto b = std::make_shared<FakeDevice>("b");
    EXPECT_FALSE(bus.insert(b, MmioAddress(0x1000), 0x10));   // same base
    EXPECT_FALSE(bus.insert(b, MmioAddress(0x10ff), 0x10));   // last byte
    EXPECT_FALSE(bus.insert(b, MmioAddress(0xff0), 0x11));    // reaches first byte
    EXPECT_FALSE(bus.insert(b, MmioAddress(0x800), 0x1000));  // covers it
    EXPECT_TRUE(bus.insert(b, MmioAddress(0x1100), 0x10));    // adjacent after
    auto c = std::make_shared<FakeDevice>("c");
    EXPECT_TRUE(bus.insert(c, MmioAddress(0xff0), 0x10));  // adjacent before
    EXPECT_EQ(bus.size(), 3u);
}

TEST(Bus, RejectsEmptyAndWrappingRanges) {
    MmioBus bus;
    auto a = std::make_shared<FakeDevice>("a");
    EXPECT_FALSE(bus.insert(a, MmioAddress(0x1000), 0));
    EXPECT_FALSE(bus.insert(a, MmioAddress(~0ull - 1), 4));
    EXPECT_TRUE(bus.insert(a, MmioAddress(~0ull - 3), 4));  // ends exactly at the top
    uint8_t buf[2];
    EXPECT_TRUE(bus.read(MmioAddress(~0ull - 1), buf));
    EXPECT_FALSE(bus.read(MmioAddress(~0ull), std::span(buf, 2)));
    EXPECT_FALSE(bus.insert(nullptr, MmioAddress(0), 1));
}

TEST(Bus, RemoveFreesTheRange) {
    PioBus bus;
    auto a = std::make_shared<FakeDevice>("a");
    ASSERT_TRUE(bus.insert(a, PioAddress(0x60), 1));
    EXPECT_FALSE(bus.remove(PioAddress(0x61)));
    EXPECT_TRUE(bus.remove(PioAddress(0x60)));
    uint8_t v;
    EXPECT_FALSE(bus.read(PioAddress(0x60), std::span(&v, 1)));
    EXPECT_TRUE(bus.insert(a, PioAddress(0x60), 1));
}

}  // namespace
}  // namespace rv
