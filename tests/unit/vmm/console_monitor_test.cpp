#include "vmm/console_monitor.h"

#include <gtest/gtest.h>

#include <string_view>

namespace rv {
namespace {

std::span<const uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(ConsoleMonitor, IgnoresOrdinaryOutput) {
    ConsoleMonitor m;
    EXPECT_EQ(m.feed(bytes("[    0.000000] Linux version 6.1\r\nKernel panic? no\r\n")),
              ConsoleMonitor::Event::None);
    EXPECT_FALSE(m.panicked());
}

TEST(ConsoleMonitor, SeesPanicAcrossChunks) {
    ConsoleMonitor m;
    EXPECT_EQ(m.feed(bytes("[    1.234] Kernel pa")), ConsoleMonitor::Event::None);
    EXPECT_EQ(m.feed(bytes("nic - not syncing: sysrq triggered crash\r\n")),
              ConsoleMonitor::Event::PanicStarted);
    ASSERT_TRUE(m.panicked());
    EXPECT_EQ(*m.panic_line(), "Kernel panic - not syncing: sysrq triggered crash");
    EXPECT_EQ(m.feed(bytes("---[ end Kernel panic - not syncing: sysrq triggered crash ]---\n")),
              ConsoleMonitor::Event::PanicEnded);
    EXPECT_EQ(*m.panic_line(), "Kernel panic - not syncing: sysrq triggered crash");
}

TEST(ConsoleMonitor, LongLinesDoNotGrowWithoutBound) {
    ConsoleMonitor m;
    std::string junk(100000, 'x');
    EXPECT_EQ(m.feed(bytes(junk)), ConsoleMonitor::Event::None);
    EXPECT_EQ(m.feed(bytes("\n")), ConsoleMonitor::Event::None);
}

}  // namespace
}  // namespace rv
