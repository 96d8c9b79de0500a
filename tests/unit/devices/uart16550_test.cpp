#include "devices/legacy/uart16550.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "support/bus_access.h"
#include "support/recording_irq_line.h"

namespace rv {
namespace {

using test::read8;
using test::RecordingIrqLine;
using test::write8;

constexpr uint64_t kData = 0, kIer = 1, kIir = 2, kFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6,
                   kScr = 7;

class UartTest : public ::testing::Test {
  protected:
    uint8_t in(uint64_t reg) { return read8(uart, reg); }
    void out(uint64_t reg, uint8_t value) { write8(uart, reg, value); }
    void input(std::string_view text) {
        uart.enqueue_input(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    }
    std::string output_text() const { return std::string(output.begin(), output.end()); }

    std::shared_ptr<RecordingIrqLine> irq = std::make_shared<RecordingIrqLine>();
    std::vector<uint8_t> output;
    Uart16550 uart{irq, [this](std::span<const uint8_t> bytes) {
                       output.insert(output.end(), bytes.begin(), bytes.end());
                   }};
};

TEST_F(UartTest, ResetState) {
    EXPECT_EQ(in(kLsr), 0x60);  // THRE | TEMT, no data
    EXPECT_EQ(in(kIir), 0x01);  // no interrupt, FIFOs off
    EXPECT_EQ(in(kIer), 0x00);
    EXPECT_EQ(in(kLcr), 0x00);
    EXPECT_EQ(in(kMsr), 0xb0);  // CTS | DSR | DCD: a connected line
    EXPECT_FALSE(irq->level());
    EXPECT_EQ(uart.input_capacity(), 1u);  // 16450 mode: one holding register
}

TEST_F(UartTest, TransmitsToSinkAndStaysEmpty) {
    out(kData, 'h');
    out(kData, 'i');
    EXPECT_EQ(output_text(), "hi");
    EXPECT_EQ(in(kLsr)&0x60, 0x60);
}

TEST_F(UartTest, IerReservedBitsReadAsZero) {
    out(kIer, 0xff);
    EXPECT_EQ(in(kIer), 0x0f);
}

TEST_F(UartTest, EnablingThreInterruptRaisesItAndIirReadClearsIt) {
    out(kIer, 0x02);
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(in(kIir), 0x02);
    // Reading IIR acknowledged it.
    EXPECT_EQ(in(kIir), 0x01);
    EXPECT_FALSE(irq->level());
}

TEST_F(UartTest, ThreReassertsWhenEtbeiToggled) {
    // Linux's serial8250_do_startup THRE test.
    out(kIer, 0x02);
    EXPECT_EQ(in(kIir)&0x0f, 0x02);
    out(kIer, 0x00);
    out(kIer, 0x02);
    EXPECT_EQ(in(kIir)&0x0f, 0x02);
    EXPECT_EQ(irq->rising_edges(), 2u);
}

TEST_F(UartTest, RewritingIerWithEtbeiAlreadySetDoesNotRearm) {
    out(kIer, 0x02);
    EXPECT_EQ(in(kIir), 0x02);
    out(kIer, 0x03);  // ETBEI unchanged
    EXPECT_EQ(in(kIir), 0x01);
}

TEST_F(UartTest, ThrWriteAcknowledgesAndInstantTransmitRearms) {
    out(kIer, 0x02);
    EXPECT_EQ(in(kIir), 0x02);
    EXPECT_FALSE(irq->level());
    out(kData, 'x');  // leaves at once: THR empty again, THRE pending again
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(in(kIir), 0x02);
    EXPECT_EQ(output_text(), "x");
}

TEST_F(UartTest, DisablingEtbeiDropsPendingThre) {
    out(kIer, 0x02);
    EXPECT_TRUE(irq->level());
    out(kIer, 0x00);
    EXPECT_FALSE(irq->level());
    EXPECT_EQ(in(kIir), 0x01);
}

TEST_F(UartTest, IrqLineOnlyToggledOnChange) {
    out(kIer, 0x02);
    out(kData, 'a');
    out(kData, 'b');
    EXPECT_EQ(irq->history(), std::vector<bool>{true});
}

TEST_F(UartTest, ReceivedDataRaisesInterruptUntilRead) {
    out(kIer, 0x01);
    EXPECT_FALSE(irq->level());
    input("a");
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(in(kIir), 0x04);
    EXPECT_EQ(in(kLsr)&0x01, 0x01);
    EXPECT_EQ(in(kData), 'a');
    EXPECT_EQ(in(kLsr)&0x01, 0x00);
    EXPECT_EQ(in(kIir), 0x01);
    EXPECT_FALSE(irq->level());
}

TEST_F(UartTest, ReceivedDataWithoutErbfiOnlySetsDataReady) {
    input("a");
    EXPECT_FALSE(irq->level());
    EXPECT_EQ(in(kIir), 0x01);
    EXPECT_EQ(in(kLsr), 0x61);
}

TEST_F(UartTest, FifoModeReportsFifoBitsAndQueuesInOrder) {
    out(kFcr, 0x01);  // enable, trigger level 1
    out(kIer, 0x01);
    EXPECT_EQ(uart.input_capacity(), Uart16550::kRxFifoSize);
    input("abc");
    EXPECT_EQ(in(kIir), 0xc4);
    EXPECT_EQ(in(kData), 'a');
    EXPECT_EQ(in(kData), 'b');
    EXPECT_EQ(in(kIir), 0xc4);
    EXPECT_EQ(in(kData), 'c');
    EXPECT_EQ(in(kIir), 0xc1);
    EXPECT_FALSE(irq->level());
}

TEST_F(UartTest, BelowTriggerLevelReportsCharacterTimeout) {
    out(kFcr, 0xc1);  // trigger level 14
    out(kIer, 0x01);
    input("abc");
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(in(kIir), 0xcc);
    input("defghijklmn");  // 14 bytes now
    EXPECT_EQ(in(kIir), 0xc4);
}

TEST_F(UartTest, FifoOverrunSetsOeAndKeepsFirstBytes) {
    out(kFcr, 0x01);
    std::string bytes;
    for (int i = 0; i < 65; ++i) bytes.push_back(static_cast<char>(i));
    input(bytes);
    EXPECT_EQ(uart.input_capacity(), 0u);
    EXPECT_FALSE(uart.input_space());
    EXPECT_EQ(in(kLsr), 0x63);  // DR | OE | THRE | TEMT
    EXPECT_EQ(in(kLsr), 0x61);  // OE clears on read
    for (int i = 0; i < 64; ++i) ASSERT_EQ(in(kData), i);
    EXPECT_EQ(in(kLsr), 0x60);
}

TEST_F(UartTest, NonFifoModeOverrunsOnSecondByte) {
    input("ab");
    EXPECT_EQ(in(kLsr), 0x63);
    EXPECT_EQ(in(kData), 'a');
    EXPECT_EQ(in(kLsr), 0x60);
}

TEST_F(UartTest, OverrunRaisesLineStatusInterruptWithTopPriority) {
    out(kIer, 0x07);  // line status, rx data, THRE
    input("ab");      // 16450 mode: second byte overruns
    EXPECT_EQ(in(kIir), 0x06);
    in(kLsr);  // acknowledges the line status interrupt
    EXPECT_EQ(in(kIir), 0x04);
    in(kData);
    EXPECT_EQ(in(kIir), 0x02);
    EXPECT_EQ(in(kIir), 0x01);
    EXPECT_FALSE(irq->level());
}

TEST_F(UartTest, ModemStatusInterruptHasLowestPriority) {
    out(kMcr, 0x10);  // loopback: modem lines drop, deltas set
    out(kIer, 0x0a);  // modem status + THRE
    EXPECT_EQ(in(kIir), 0x02);
    EXPECT_EQ(in(kIir), 0x00);  // modem status
    EXPECT_TRUE(irq->level());
    in(kMsr);  // clears the deltas
    EXPECT_EQ(in(kIir), 0x01);
    EXPECT_FALSE(irq->level());
}

TEST_F(UartTest, FcrClearsReceiveFifo) {
    out(kFcr, 0x01);
    input("abc");
    out(kFcr, 0x03);  // enable + clear RX
    EXPECT_EQ(in(kLsr)&0x01, 0);
    input("d");
    out(kFcr, 0x00);  // leaving FIFO mode empties the FIFO too
    EXPECT_EQ(in(kLsr)&0x01, 0);
    EXPECT_EQ(in(kIir), 0x01);
}

TEST_F(UartTest, FcrBitsIgnoredWithoutEnable) {
    out(kFcr, 0x01);
    input("abc");
    out(kFcr, 0x01);  // re-enabling without CLEAR keeps the data
    EXPECT_EQ(in(kData), 'a');
}

TEST_F(UartTest, DivisorLatchDoesNotTouchRbrOrIer) {
    out(kIer, 0x05);
    input("z");
    out(kLcr, 0x83);   // DLAB, 8N1
    out(kData, 0x01);  // DLL: 115200 baud
    out(kIer, 0x00);   // DLM
    EXPECT_EQ(in(kData), 0x01);
    EXPECT_EQ(in(kIer), 0x00);
    EXPECT_TRUE(output.empty());  // DLL write did not transmit
    out(kLcr, 0x03);
    EXPECT_EQ(in(kIer), 0x05);
    EXPECT_EQ(in(kData), 'z');
    out(kLcr, 0x80);
    EXPECT_EQ(in(kData), 0x01);
    EXPECT_EQ(in(kIer), 0x00);
}

TEST_F(UartTest, LoopbackRoutesTransmitToReceiveAndMirrorsModemLines) {
    out(kFcr, 0x01);
    out(kMcr, 0x10);
    EXPECT_EQ(in(kMsr), 0x0b);  // all lines dropped: DCTS | DDSR | DDCD
    EXPECT_EQ(in(kMsr), 0x00);  // deltas cleared by the read
    out(kData, 'L');
    EXPECT_TRUE(output.empty());
    EXPECT_EQ(in(kLsr)&0x01, 0x01);
    EXPECT_EQ(in(kData), 'L');
    out(kMcr, 0x1f);
    EXPECT_EQ(in(kMsr), 0xfb);  // RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD (+ deltas)
    out(kMcr, 0x1b);            // OUT1 off: trailing edge of RI
    EXPECT_EQ(in(kMsr), 0xb4);
    out(kMcr, 0x00);
    EXPECT_EQ(in(kMsr)&0xf0, 0xb0);
    out(kData, 'N');
    EXPECT_EQ(output_text(), "N");
}

TEST_F(UartTest, LoopbackDiscardsHostInputAndReportsNoSpace) {
    int space_calls = 0;
    uart.set_input_space_callback([&] { ++space_calls; });
    out(kFcr, 0x01);
    out(kMcr, 0x10);
    EXPECT_EQ(uart.input_capacity(), 0u);
    input("x");
    EXPECT_EQ(in(kLsr)&0x03, 0);  // neither stored nor an overrun
    out(kMcr, 0x00);
    EXPECT_EQ(space_calls, 1);
    EXPECT_EQ(uart.input_capacity(), Uart16550::kRxFifoSize);
}

TEST_F(UartTest, InputSpaceCallbackFiresWhenGuestDrainsFullFifo) {
    int space_calls = 0;
    uart.set_input_space_callback([&] { ++space_calls; });
    out(kFcr, 0x01);
    input(std::string(63, 'a'));
    in(kData);
    EXPECT_EQ(space_calls, 0);  // never full
    input("bb");
    EXPECT_EQ(uart.input_capacity(), 0u);
    in(kData);
    EXPECT_EQ(space_calls, 1);
    EXPECT_EQ(uart.input_capacity(), 1u);
    in(kData);
    EXPECT_EQ(space_calls, 1);
}

TEST_F(UartTest, ScratchRegisterHoldsAnyValue) {
    for (int v : {0x00, 0x55, 0xaa, 0xff}) {
        out(kScr, static_cast<uint8_t>(v));
        EXPECT_EQ(in(kScr), v);
    }
}

TEST_F(UartTest, WideAccessSplitsIntoConsecutiveRegisters) {
    test::write16(uart, kData, 0x0241);  // THR = 'A', IER = THRE
    EXPECT_EQ(output_text(), "A");
    EXPECT_EQ(in(kIer), 0x02);
    EXPECT_EQ(test::read16(uart, kLcr), 0x0000);  // LCR, MCR
}

TEST_F(UartTest, SinkMayEchoIntoInput) {
    Uart16550* self = nullptr;
    auto echo_irq = std::make_shared<RecordingIrqLine>();
    Uart16550 echo(echo_irq, [&](std::span<const uint8_t> bytes) { self->enqueue_input(bytes); });
    self = &echo;
    write8(echo, kData, 'e');
    EXPECT_EQ(read8(echo, kData), 'e');
}

TEST_F(UartTest, ConcurrentWritersLoseNoBytes) {
    constexpr int kThreads = 4, kBytes = 2000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([this] {
            for (int i = 0; i < kBytes; ++i) write8(uart, kData, 'x');
        });
    }
    std::thread reader([this] {
        for (int i = 0; i < kBytes; ++i) {
            input("r");
            read8(uart, kData);
        }
    });
    for (auto& t : threads) t.join();
    reader.join();
    EXPECT_EQ(output.size(), size_t{kThreads * kBytes});
}

// The probe of drivers/tty/serial/8250/8250_port.c, autoconfig() and
// autoconfig_16550a(), step by step; returns the type Linux would print.
std::string linux_autoconfig(BusDevice& d) {
    const uint8_t scratch = read8(d, kIer);
    write8(d, kIer, 0);
    const uint8_t scratch2 = read8(d, kIer) & 0x0f;
    write8(d, kIer, 0x0f);
    const uint8_t scratch3 = read8(d, kIer) & 0x0f;
    write8(d, kIer, scratch);
    if (scratch2 != 0 || scratch3 != 0x0f) return "none (IER test)";

    const uint8_t save_mcr = read8(d, kMcr);
    const uint8_t save_lcr = read8(d, kLcr);
    write8(d, kMcr, 0x10 | 0x0a);  // loop, RTS, OUT2
    uint8_t status1 = read8(d, kMsr) & 0xf0;
    write8(d, kMcr, save_mcr);
    if (status1 != 0x90) return "none (loopback test)";

    write8(d, kLcr, 0xbf);  // UART_LCR_CONF_MODE_B
    write8(d, 2, 0);        // UART_EFR
    write8(d, kLcr, 0);
    write8(d, kFcr, 0x01);
    switch (read8(d, kIir) >> 6) {
        case 0:
            return "8250";
        case 1:
            return "unknown";
        case 2:
            return "16550";
        default:
            break;
    }

    // autoconfig_16550a
    write8(d, kLcr, 0x80);
    if (read8(d, 2) == 0) return "ST16C650V1";
    write8(d, kLcr, 0xbf);
    if (read8(d, 2) == 0) return "16650 (EFRv2)";
    write8(d, kLcr, 0);
    status1 = read8(d, kMcr);
    write8(d, kLcr, 0xe0);
    uint8_t status2 = read8(d, 2);  // EXCR1
    if (!((status2 ^ status1) & 0x10)) {
        write8(d, kLcr, 0);
        write8(d, kMcr, status1 ^ 0x10);
        write8(d, kLcr, 0xe0);
        status2 = read8(d, 2);
        write8(d, kLcr, 0);
        write8(d, kMcr, status1);
        if ((status2 ^ status1) & 0x10) return "NS16550A";
    }
    write8(d, kLcr, 0);
    write8(d, kFcr, 0x01 | 0x20);  // UART_FCR7_64BYTE
    status1 = read8(d, kIir) & 0xe0;
    write8(d, kFcr, 0);
    write8(d, kLcr, 0x80);
    write8(d, kFcr, 0x01 | 0x20);
    status2 = read8(d, kIir) & 0xe0;
    write8(d, kFcr, 0);
    write8(d, kLcr, 0);
    if (status1 == 0xc0 && status2 == 0xe0) return "16750";
    const uint8_t iersave = read8(d, kIer);
    write8(d, kIer, iersave & ~0x40);
    if (!(read8(d, kIer) & 0x40)) {
        write8(d, kIer, iersave | 0x40);
        if (read8(d, kIer) & 0x40) return "XScale";
    }
    write8(d, kIer, iersave);
    write8(d, kLcr, save_lcr);
    return "16550A";
}

TEST_F(UartTest, LinuxAutoconfigFindsA16550A) {
    EXPECT_EQ(linux_autoconfig(uart), "16550A");
    EXPECT_TRUE(output.empty());  // loopback probing must not leak to the console
}

TEST_F(UartTest, LinuxStartupTestsFindNoThreOrTxenBug) {
    ASSERT_EQ(linux_autoconfig(uart), "16550A");
    out(kFcr, 0x07);  // serial8250_clear_fifos
    out(kFcr, 0x00);
    out(kLcr, 0x03);  // UART_LCR_WLEN8
    out(kMcr, 0x0b);  // DTR | RTS | OUT2
    // THRE test: the interrupt must come back after IER.THRI is toggled.
    out(kIer, 0x02);
    const uint8_t iir1 = in(kIir);
    out(kIer, 0x00);
    out(kIer, 0x02);
    const uint8_t iir = in(kIir);
    out(kIer, 0x00);
    EXPECT_FALSE(!(iir1 & 0x01) && (iir & 0x01)) << "UART_BUG_THRE";
    EXPECT_EQ(iir1 & 0x0f, 0x02);
    // TXEN test: enabling THRI with the transmitter empty interrupts.
    out(kIer, 0x02);
    const uint8_t lsr = in(kLsr);
    const uint8_t iir2 = in(kIir);
    out(kIer, 0x00);
    EXPECT_FALSE((lsr & 0x40) && (iir2 & 0x01)) << "UART_BUG_TXEN";
    EXPECT_FALSE(irq->level());
    EXPECT_GE(irq->rising_edges(), 3u);
}

}  // namespace
}  // namespace rv
