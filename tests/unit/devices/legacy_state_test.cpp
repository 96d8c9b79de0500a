// Save -> encode -> decode -> restore into a new instance -> save gives the
// same state, and the restored device answers the next accesses exactly as
// the original does. Restore refuses states no device could be in.
#include <gtest/gtest.h>

#include <string_view>
#include <vector>

#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/uart16550.h"
#include "snapshot/state_codec.h"
#include "support/state_roundtrip.h"
#include "support/bus_access.h"
#include "support/manual_clock.h"
#include "support/recording_irq_line.h"

namespace rv {
namespace {

using test::read8;
using test::RecordingIrqLine;
using test::write8;

using test::expect_truncation_refused;
using test::through_bytes;

// ---------------------------------------------------------------- 16550

struct UartPair {
    std::shared_ptr<RecordingIrqLine> irq_a = std::make_shared<RecordingIrqLine>();
    std::shared_ptr<RecordingIrqLine> irq_b = std::make_shared<RecordingIrqLine>();
    std::vector<uint8_t> out_a, out_b;
    Uart16550 a{irq_a, [this](std::span<const uint8_t> x) { out_a.insert(out_a.end(), x.begin(), x.end()); }};
    Uart16550 b{irq_b, [this](std::span<const uint8_t> x) { out_b.insert(out_b.end(), x.begin(), x.end()); }};
};

void input(Uart16550& uart, std::string_view text) {
    uart.enqueue_input(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

TEST(LegacyState, UartRoundTripsAndAnswersAlike) {
    UartPair p;
    write8(p.a, 3, 0x80);  // DLAB: divisor 3 (38400 baud)
    write8(p.a, 0, 3);
    write8(p.a, 1, 0);
    write8(p.a, 3, 0x03);                 // 8N1
    write8(p.a, 2, 0x81);                 // FIFO on, trigger 8
    write8(p.a, 1, 0x07);                 // RX, THRE, line status interrupts
    write8(p.a, 4, 0x0b);                 // DTR RTS OUT2
    write8(p.a, 7, 0x5a);
    input(p.a, "hello");
    EXPECT_EQ(read8(p.a, 0), 'h');        // the FIFO head is not at slot 0
    ASSERT_TRUE(p.irq_a->level());

    const auto saved = p.a.save();
    EXPECT_EQ(saved.rx, (std::vector<uint8_t>{'e', 'l', 'l', 'o'}));
    EXPECT_EQ(saved.rx_trigger, 8);
    ASSERT_TRUE(p.b.restore(through_bytes(saved)).has_value());
    EXPECT_EQ(p.b.save(), saved);
    EXPECT_TRUE(p.irq_b->level()) << "restore drives the IRQ line";
    EXPECT_EQ(p.b.input_capacity(), p.a.input_capacity());

    // The same accesses from here on give the same answers and output.
    for (auto* uart : {&p.a, &p.b}) {
        input(*uart, "!");
        write8(*uart, 0, 'x');
    }
    for (uint64_t reg : {2, 5, 6, 0, 0, 0, 0, 0, 2, 5, 3, 4, 7, 1}) {
        EXPECT_EQ(read8(p.a, reg), read8(p.b, reg)) << "register " << reg;
        EXPECT_EQ(p.irq_a->level(), p.irq_b->level()) << "after register " << reg;
    }
    EXPECT_EQ(p.out_a, p.out_b);
    expect_truncation_refused(saved);
}

TEST(LegacyState, UartRefusesImpossibleStatesAndStaysAsItWas) {
    UartPair p;
    input(p.b, "q");
    const auto before = p.b.save();
    Uart16550::State s;
    s.rx = {1, 2};  // two bytes with the FIFO off
    EXPECT_FALSE(p.b.restore(s).has_value());
    s = {};
    s.rx_trigger = 3;
    EXPECT_FALSE(p.b.restore(s).has_value());
    s = {};
    s.ier = 0x10;
    EXPECT_FALSE(p.b.restore(s).has_value());
    s = {};
    s.fifo_enabled = true;
    s.rx.assign(Uart16550::kRxFifoSize + 1, 0);
    EXPECT_FALSE(p.b.restore(s).has_value());
    EXPECT_FALSE(snapshot::decode<Uart16550::State>(snapshot::encode(s), "uart").has_value())
        << "decode caps the FIFO too";
    EXPECT_EQ(p.b.save(), before);
}

// ---------------------------------------------------------------- RTC

TEST(LegacyState, RtcKeepsTheGuestsClockOffsetAndNvram) {
    test::ManualClock clock(1'800'000'000);
    CmosRtc a(clock.function());
    CmosRtc b(clock.function());
    a.set_memory_size(512ull << 20, 0);
    auto set = [](CmosRtc& rtc, uint8_t index, uint8_t value) {
        write8(rtc, 0, index);
        write8(rtc, 1, value);
    };
    auto get = [](CmosRtc& rtc, uint8_t index) {
        write8(rtc, 0, index);
        return read8(rtc, 1);
    };
    // The guest sets the year to 2030 (BCD), and writes NVRAM.
    set(a, 0x0b, 0x82);  // SET, 24 h
    set(a, 0x09, 0x30);
    set(a, 0x0b, 0x02);
    set(a, 0x40, 0xab);
    write8(a, 0, 0x09);  // leave the index on the year

    const auto saved = a.save();
    ASSERT_TRUE(b.restore(through_bytes(saved)).has_value());
    EXPECT_EQ(b.save(), saved);
    clock.advance(3600);
    EXPECT_EQ(read8(b, 1), 0x30) << "index restored";
    for (uint8_t index : {0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x0b, 0x15, 0x16, 0x34, 0x40})
        EXPECT_EQ(get(a, index), get(b, index)) << "register " << int{index};

    CmosRtc::State bad = saved;
    bad.index = 0x80;
    EXPECT_FALSE(b.restore(bad).has_value());
    bad = saved;
    bad.offset = INT64_MIN;
    EXPECT_FALSE(b.restore(bad).has_value());
    expect_truncation_refused(saved);
}

// ---------------------------------------------------------------- i8042

TEST(LegacyState, I8042MidSequenceRoundTrips) {
    auto irq_a = std::make_shared<RecordingIrqLine>();
    auto irq_b = std::make_shared<RecordingIrqLine>();
    auto a = I8042::create(irq_a, [] {});
    auto b = I8042::create(irq_b, [] {});
    a->write_command(0x60);  // write command byte: interrupt, translate
    a->write_data(0x41);
    ASSERT_TRUE(a->send_ctrl_alt_del().has_value());
    EXPECT_EQ(a->read_data(), 0x1d);  // Ctrl down (set 1), the rest still queued
    a->write_command(0xd3);           // a command waiting for its parameter

    const auto saved = a->save();
    EXPECT_TRUE(saved.output_full);
    EXPECT_FALSE(saved.keyboard.buffer.empty());
    ASSERT_TRUE(b->restore(through_bytes(saved)).has_value());
    EXPECT_EQ(b->save(), saved);
    EXPECT_EQ(irq_b->level(), irq_a->level());
    ASSERT_TRUE(irq_b->level());

    for (auto& k : {a, b}) k->write_data(0x77);  // the 0xd3 parameter
    for (int i = 0; i < 12; ++i) {
        EXPECT_EQ(a->read_status(), b->read_status()) << i;
        EXPECT_EQ(a->read_data(), b->read_data()) << i;
        EXPECT_EQ(irq_a->level(), irq_b->level()) << i;
    }
    expect_truncation_refused(saved);

    auto bad = saved;
    bad.pending = 9;
    EXPECT_FALSE(b->restore(bad).has_value());
    bad = saved;
    bad.keyboard.set = 4;
    EXPECT_FALSE(b->restore(bad).has_value());
    bad = saved;
    bad.output_full = false;
    bad.reply = 0xfa;
    EXPECT_FALSE(b->restore(bad).has_value());
}

// ---------------------------------------------------------------- ACPI PM

TEST(LegacyState, AcpiPmRestoresAPendingPowerButtonAndItsSci) {
    int poweroffs = 0;
    auto sci_a = std::make_shared<RecordingIrqLine>();
    auto sci_b = std::make_shared<RecordingIrqLine>();
    AcpiPmDevice a([&] { ++poweroffs; }, sci_a);
    AcpiPmDevice b([&] { ++poweroffs; }, sci_b);
    test::write16(a, 2, AcpiPmDevice::kStatusPowerButton);  // PWRBTN_EN
    a.press_power_button();
    ASSERT_TRUE(sci_a->level());

    const auto saved = a.save();
    ASSERT_TRUE(b.restore(through_bytes(saved)).has_value());
    EXPECT_EQ(b.save(), saved);
    EXPECT_TRUE(sci_b->level());
    for (auto* pm : {&a, &b}) test::write16(*pm, 0, AcpiPmDevice::kStatusPowerButton);  // acknowledge
    EXPECT_FALSE(sci_b->level());
    EXPECT_EQ(test::read32(a, 0), test::read32(b, 0));
    EXPECT_EQ(poweroffs, 0);

    auto bad = saved;
    bad.control |= AcpiPmDevice::kControlSleepEnable;
    EXPECT_FALSE(b.restore(bad).has_value());
    expect_truncation_refused(saved);
}

}  // namespace
}  // namespace rv
