#include "devices/legacy/reset_control.h"

#include <gtest/gtest.h>

#include <vector>

namespace rv {
namespace {

// Stands in for the PCI configuration ports: records what reaches it.
class PortsRecorder : public BusDevice {
  public:
    std::string_view name() const override { return "ports"; }
    void read(uint64_t offset, std::span<uint8_t> data) override {
        reads.push_back({offset, data.size()});
        for (auto& b : data) b = 0x5A;
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        writes.push_back({offset, data.size()});
    }
    std::vector<std::pair<uint64_t, size_t>> reads, writes;
};

struct ResetControlTest : ::testing::Test {
    int resets = 0;
    ResetControl rcr{[this] { ++resets; }};
    uint8_t read_byte(uint64_t offset) {
        uint8_t b = 0;
        rcr.read(offset, std::span(&b, 1));
        return b;
    }
    void write_byte(uint64_t offset, uint8_t v) { rcr.write(offset, std::span(&v, 1)); }
};

TEST_F(ResetControlTest, RstCpuResets) {
    write_byte(ResetControl::kRegisterOffset,
               0x02);  // SYS_RST alone: no reset yet (Linux's first write)
    EXPECT_EQ(resets, 0);
    EXPECT_EQ(read_byte(ResetControl::kRegisterOffset), 0x02);
    write_byte(ResetControl::kRegisterOffset, 0x06);  // SYS_RST | RST_CPU: the FADT's reset value
    EXPECT_EQ(resets, 1);
    EXPECT_EQ(read_byte(ResetControl::kRegisterOffset), 0x02);  // RST_CPU is not kept
    write_byte(ResetControl::kRegisterOffset, 0x04);            // a soft reset resets too
    EXPECT_EQ(resets, 2);
}

TEST_F(ResetControlTest, OtherAccessesGoToThePciConfigPorts) {
    auto ports = std::make_shared<PortsRecorder>();
    rcr.set_config_ports(ports);
    uint8_t dword[4] = {0, 0, 0, 0x80};
    rcr.write(0, dword);  // CONFIG_ADDRESS: a dword at 0xCF8, even though it covers 0xCF9
    rcr.read(0, dword);
    write_byte(4, 0x11);  // CONFIG_DATA
    EXPECT_EQ(read_byte(5), 0x5A);
    EXPECT_EQ(resets, 0);
    ASSERT_EQ(ports->writes.size(), 2u);
    EXPECT_EQ(ports->writes[0], (std::pair<uint64_t, size_t>{0, 4}));
    EXPECT_EQ(ports->writes[1], (std::pair<uint64_t, size_t>{4, 1}));
    ASSERT_EQ(ports->reads.size(), 2u);
    EXPECT_EQ(ports->reads[1], (std::pair<uint64_t, size_t>{5, 1}));
    // A word access at 0xCF8/0xCF9 is not the reset register either.
    uint8_t word[2] = {0x06, 0x06};
    rcr.write(0, word);
    rcr.write(1, word);
    EXPECT_EQ(resets, 0);
}

TEST_F(ResetControlTest, WithoutPciTheRestReadsAllOnes) {
    EXPECT_EQ(read_byte(4), 0xFF);
    write_byte(4, 0x12);  // ignored, no crash
    EXPECT_EQ(resets, 0);
}

}  // namespace
}  // namespace rv
