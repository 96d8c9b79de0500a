#include "vmm/exit_recorder.h"

#include <gtest/gtest.h>

#include <array>

namespace rv {
namespace {

kvm::VcpuExit mmio_write(uint64_t address, std::span<uint8_t> data) {
    kvm::VcpuExit e;
    e.kind = kvm::VcpuExit::Kind::MmioWrite;
    e.address = address;
    e.data = data;
    e.size = static_cast<uint32_t>(data.size());
    return e;
}

TEST(ExitRecorder, KeepsTheLastExitsOldestFirst) {
    ExitRecorder rec;
    std::array<uint8_t, 4> data{};
    for (uint64_t i = 0; i < ExitRecorder::kCapacity + 5; ++i) {
        data[0] = uint8_t(i);
        rec.record(mmio_write(0x1000 + i, data));
    }
    EXPECT_EQ(rec.total(), ExitRecorder::kCapacity + 5);
    auto entries = rec.entries();
    ASSERT_EQ(entries.size(), ExitRecorder::kCapacity);
    EXPECT_EQ(entries.front().address, 0x1005u);
    EXPECT_EQ(entries.back().address, 0x1000u + ExitRecorder::kCapacity + 4);
    EXPECT_EQ(entries.back().value, ExitRecorder::kCapacity + 4);
    EXPECT_LE(entries.front().ns, entries.back().ns);
}

TEST(ExitRecorder, AReadKeepsTheValueItWasServed) {
    ExitRecorder rec;
    std::array<uint8_t, 2> data{};
    kvm::VcpuExit in;
    in.kind = kvm::VcpuExit::Kind::IoIn;
    in.address = 0x3FD;
    in.data = data;
    in.size = 2;
    rec.record(in);
    const uint8_t served[2] = {0x60, 0x01};
    rec.set_last_value(served);
    auto entries = rec.entries();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].value, 0x0160u);
    auto text = ExitRecorder::describe(entries[0]);
    EXPECT_NE(text.find("pio-in 0x3fd size 2 -> 0x160"), std::string::npos) << text;
}

TEST(ExitRecorder, EmptyHasNothing) {
    ExitRecorder rec;
    rec.set_last_value(std::span<const uint8_t>());  // nothing to update: no crash
    EXPECT_TRUE(rec.entries().empty());
}

}  // namespace
}  // namespace rv
