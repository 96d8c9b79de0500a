#include "devices/legacy/i8042.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "bus/bus.h"
#include "support/recording_irq_line.h"

namespace rv {
namespace {

using test::RecordingIrqLine;
using Bytes = std::vector<uint8_t>;

constexpr uint8_t kOutputFull = 0x01, kInputFull = 0x02, kSystemFlag = 0x04, kLastWasCommand = 0x08,
                  kNotInhibited = 0x10, kAuxData = 0x20;
// Command byte bits, as Linux's i8042.h names them.
constexpr uint8_t kCtrKbdInt = 0x01, kCtrKbdDis = 0x10, kCtrXlate = 0x40;

constexpr uint8_t kAck = 0xfa;
// Ctrl, Alt, Delete down, then up, as atkbd sees them.
const Bytes kCtrlAltDelSet1 = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
const Bytes kCtrlAltDelSet2 = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14};
const Bytes kCtrlAltDelSet3 = {0x11, 0x19, 0x64, 0xf0, 0x64, 0xf0, 0x19, 0xf0, 0x11};

class I8042Test : public ::testing::Test {
  protected:
    int resets = 0;
    std::shared_ptr<RecordingIrqLine> irq = std::make_shared<RecordingIrqLine>();
    std::shared_ptr<I8042> kbc = I8042::create(irq, [this] { ++resets; });

    uint8_t command_with_reply(uint8_t command) {
        kbc->write_command(command);
        EXPECT_TRUE(kbc->read_status() & kOutputFull) << "no reply to " << int{command};
        return kbc->read_data();
    }

    // What Linux's i8042_wait_read + read do, for every byte there is: the
    // status must say "keyboard data" (never AUX) before each read.
    Bytes drain() {
        Bytes out;
        for (int i = 0; i < 64 && (kbc->read_status() & kOutputFull); ++i) {
            EXPECT_FALSE(kbc->read_status() & kAuxData);
            out.push_back(kbc->read_data());
        }
        return out;
    }

    // libps2's ps2_command() through i8042_kbd_write(): each byte goes to
    // port 0x60 once IBF is clear, and what comes back (the ACK, then any
    // reply) is read before the next byte is sent.
    Bytes keyboard_command(Bytes bytes) {
        Bytes replies;
        for (uint8_t b : bytes) {
            EXPECT_FALSE(kbc->read_status() & kInputFull);
            kbc->write_data(b);
            for (uint8_t r : drain()) replies.push_back(r);
        }
        return replies;
    }

    void write_command_byte(uint8_t value) {
        kbc->write_command(0x60);
        kbc->write_data(value);
    }

    // Linux 6.1's i8042 driver from i8042_platform_init to the keyboard port
    // enabled, with PNP having reported no AUX port (so no AUX probing).
    void linux_i8042_init() {
        kbc->write_command(0xd1);  // A20 on through the output port
        kbc->write_data(0xdf);
        kbc->write_command(0xff);      // "null command for SMM firmware": pulses nothing
        EXPECT_TRUE(drain().empty());  // i8042_controller_check
        EXPECT_EQ(command_with_reply(0x20), 0x45);  // CTR read until stable
        EXPECT_EQ(command_with_reply(0x20), 0x45);
        EXPECT_TRUE(kbc->read_status() & kNotInhibited);  // no "Keylock active"
        write_command_byte((0x45 | kCtrKbdDis) & ~kCtrKbdInt);
        EXPECT_TRUE(drain().empty());
        write_command_byte(0x45);  // i8042_enable_kbd_port
        EXPECT_EQ(resets, 0);
    }

    // atkbd_connect() on a translating port (atkbd.reset=0, as on x86).
    void atkbd_probe() {
        EXPECT_EQ(keyboard_command({0xf2}), (Bytes{kAck, 0xab, 0x41}));  // GETID, 0x83 translated
        EXPECT_EQ(keyboard_command({0xf5}), Bytes{kAck});                // deactivate
        EXPECT_EQ(keyboard_command({0xed, 0x00}), (Bytes{kAck, kAck}));  // LEDs off
        EXPECT_EQ(keyboard_command({0xf3, 0x00}), (Bytes{kAck, kAck}));  // fastest repeat
        EXPECT_EQ(keyboard_command({0xf4}), Bytes{kAck});                // activate
    }
};

TEST_F(I8042Test, IdleStatusLetsGuestWrite) {
    const uint8_t status = kbc->read_status();
    EXPECT_EQ(status & (kInputFull | kOutputFull), 0);
    EXPECT_NE(status, 0xff);  // Linux treats 0xff as "no controller"
    EXPECT_FALSE(irq->level());
}

TEST_F(I8042Test, SelfTestPassesAndSetsSystemFlag) {
    EXPECT_EQ(command_with_reply(0xaa), 0x55);
    EXPECT_EQ(kbc->read_status() & kOutputFull, 0);  // the read emptied it
    EXPECT_TRUE(kbc->read_status() & kSystemFlag);
    EXPECT_EQ(command_with_reply(0xab), 0x00);
}

TEST_F(I8042Test, CommandByteReadWrite) {
    EXPECT_EQ(command_with_reply(0x20), 0x45);
    kbc->write_command(0x60);
    EXPECT_TRUE(kbc->read_status() & kLastWasCommand);
    kbc->write_data(0x12);
    EXPECT_FALSE(kbc->read_status() & kLastWasCommand);
    EXPECT_EQ(command_with_reply(0x20), 0x12);
    EXPECT_EQ(resets, 0);
}

TEST_F(I8042Test, InterfaceEnableDisableCommandsEditCommandByte) {
    kbc->write_command(0xad);
    EXPECT_EQ(command_with_reply(0x20) & 0x10, 0x10);
    kbc->write_command(0xae);
    EXPECT_EQ(command_with_reply(0x20) & 0x10, 0x00);
    kbc->write_command(0xa7);
    EXPECT_EQ(command_with_reply(0x20) & 0x20, 0x20);
    kbc->write_command(0xa8);
    EXPECT_EQ(command_with_reply(0x20) & 0x20, 0x00);
}

TEST_F(I8042Test, PulseResetCommand) {
    kbc->write_command(0xfe);
    EXPECT_EQ(resets, 1);
    kbc->write_command(0xff);  // pulses no line
    EXPECT_EQ(resets, 1);
}

TEST_F(I8042Test, ResetThroughOutputPort) {
    EXPECT_EQ(command_with_reply(0xd0), 0x03);
    kbc->write_command(0xd1);
    kbc->write_data(0x03);  // reset line stays high
    EXPECT_EQ(resets, 0);
    kbc->write_command(0xd1);
    kbc->write_data(0x02);  // bit 0 low: reset
    EXPECT_EQ(resets, 1);
}

TEST_F(I8042Test, UnknownCommandIsIgnored) {
    kbc->write_command(0xc0);
    EXPECT_EQ(kbc->read_status() & kOutputFull, 0);
    EXPECT_EQ(resets, 0);
    EXPECT_EQ(command_with_reply(0x20), 0x45);
}

TEST_F(I8042Test, NewCommandCancelsPendingParameter) {
    kbc->write_command(0xd1);
    kbc->write_command(0x20);
    EXPECT_EQ(kbc->read_data(), 0x45);
    kbc->write_data(0x00);  // no longer an output-port write: it goes to the keyboard
    EXPECT_EQ(resets, 0);
}

TEST_F(I8042Test, AuxLoopbackFailsFastWithoutMouse) {
    // Linux's i8042_check_aux: the looped byte must not come back flagged
    // as AUX data, and the AUX interface test must report an error.
    kbc->write_command(0xd3);
    kbc->write_data(0x5a);
    const uint8_t status = kbc->read_status();
    EXPECT_TRUE(status & kOutputFull);
    EXPECT_FALSE(status & kAuxData);
    kbc->read_data();
    const uint8_t aux_test = command_with_reply(0xa9);
    EXPECT_TRUE(aux_test != 0 && aux_test != 0xfa && aux_test != 0xff);
}

TEST_F(I8042Test, BusPortsReachTheController) {
    PioBus bus;
    ASSERT_TRUE(bus.insert(kbc->data_port(), PioAddress{I8042::kDataPort}, I8042::kPortLength));
    ASSERT_TRUE(
        bus.insert(kbc->command_port(), PioAddress{I8042::kCommandPort}, I8042::kPortLength));
    kbc.reset();  // the adapters keep the controller alive

    uint8_t byte = 0xaa;
    ASSERT_TRUE(bus.write(PioAddress{0x64}, std::span(&byte, 1)));
    ASSERT_TRUE(bus.read(PioAddress{0x64}, std::span(&byte, 1)));
    EXPECT_TRUE(byte & kOutputFull);
    ASSERT_TRUE(bus.read(PioAddress{0x60}, std::span(&byte, 1)));
    EXPECT_EQ(byte, 0x55);
    byte = 0xf2;  // to the keyboard: ACK and ID come back through port 0x60
    ASSERT_TRUE(bus.write(PioAddress{0x60}, std::span(&byte, 1)));
    ASSERT_TRUE(bus.read(PioAddress{0x60}, std::span(&byte, 1)));
    EXPECT_EQ(byte, kAck);
    byte = 0xfe;
    ASSERT_TRUE(bus.write(PioAddress{0x64}, std::span(&byte, 1)));
    EXPECT_EQ(resets, 1);
}

// --- the keyboard ---

TEST_F(I8042Test, LinuxProbeSequence) {
    linux_i8042_init();
    atkbd_probe();
    EXPECT_EQ(kbc->read_status() & (kOutputFull | kInputFull | kAuxData), 0);
    EXPECT_EQ(resets, 0);
}

TEST_F(I8042Test, EveryKeyboardByteIsOneIrq1Edge) {
    linux_i8042_init();
    irq->clear_history();
    kbc->write_data(0xf2);
    // ACK loaded at once; AB and 41 wait in the keyboard until it is read.
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(irq->rising_edges(), 1u);
    EXPECT_EQ(kbc->read_data(), kAck);
    EXPECT_EQ(irq->rising_edges(), 2u);  // the read dropped the line, the next byte raised it
    EXPECT_EQ(kbc->read_data(), 0xab);
    EXPECT_EQ(kbc->read_data(), 0x41);
    EXPECT_EQ(irq->rising_edges(), 3u);
    EXPECT_FALSE(irq->level());
    EXPECT_FALSE(kbc->read_status() & kOutputFull);
    EXPECT_EQ(kbc->read_data(), 0x41);  // an empty buffer reads back the last byte
    EXPECT_EQ(irq->rising_edges(), 3u);
}

TEST_F(I8042Test, Irq1OnlyWhileEnabledInCommandByte) {
    write_command_byte(0x45 & ~kCtrKbdInt);
    irq->clear_history();
    kbc->write_data(0xee);  // echo
    EXPECT_TRUE(kbc->read_status() & kOutputFull);
    EXPECT_FALSE(irq->level());
    EXPECT_EQ(irq->rising_edges(), 0u);
    // Enabling the interrupt with a byte waiting raises it, as on a PC.
    kbc->write_command(0x60);
    EXPECT_FALSE(irq->level());  // the byte is still the keyboard's; only the write enables
    kbc->write_data(0x45);
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(kbc->read_data(), 0xee);
    EXPECT_FALSE(irq->level());
    // And disabling it drops a raised line.
    kbc->write_data(0xee);
    EXPECT_TRUE(irq->level());
    write_command_byte(0x45 & ~kCtrKbdInt);
    EXPECT_FALSE(irq->level());
    EXPECT_EQ(drain(), Bytes{0xee});
}

TEST_F(I8042Test, ControllerRepliesAlsoRaiseIrq1) {
    irq->clear_history();
    EXPECT_EQ(command_with_reply(0x20), 0x45);
    EXPECT_EQ(irq->rising_edges(), 1u);
    EXPECT_FALSE(irq->level());
}

TEST_F(I8042Test, DisabledKeyboardInterfaceHoldsTheKeyboardBytes) {
    kbc->write_command(0xad);
    kbc->write_data(0xf2);
    EXPECT_FALSE(kbc->read_status() & kOutputFull);
    EXPECT_EQ(command_with_reply(0x20) & kCtrKbdDis, kCtrKbdDis);  // controller replies pass
    kbc->write_command(0xae);
    EXPECT_EQ(drain(), (Bytes{kAck, 0xab, 0x41}));
}

TEST_F(I8042Test, ControllerReplyWaitsBehindAnUnreadKeyboardByte) {
    kbc->write_data(0xee);
    kbc->write_command(0x20);
    EXPECT_EQ(kbc->read_data(), 0xee);
    EXPECT_EQ(kbc->read_data(), 0x45);
    EXPECT_FALSE(kbc->read_status() & kOutputFull);
}

TEST_F(I8042Test, WriteKeyboardOutputBufferIsKeyboardData) {
    irq->clear_history();
    kbc->write_command(0xd2);
    kbc->write_data(0x14);  // not translated: the guest wrote it as is
    EXPECT_EQ(kbc->read_status() & (kOutputFull | kAuxData), kOutputFull);
    EXPECT_EQ(irq->rising_edges(), 1u);
    EXPECT_EQ(kbc->read_data(), 0x14);
}

TEST_F(I8042Test, KeyboardResetEchoResendAndUnknownCommands) {
    EXPECT_EQ(keyboard_command({0xff}), (Bytes{kAck, 0xaa}));  // reset: self-test passed
    EXPECT_EQ(keyboard_command({0xee}), Bytes{0xee});          // echo, no ACK
    EXPECT_EQ(keyboard_command({0xfe}), Bytes{0xee});          // resend the last byte
    EXPECT_EQ(keyboard_command({0xf6}), Bytes{kAck});          // defaults
    EXPECT_EQ(keyboard_command({0xfa}), Bytes{kAck});          // set 3 "all make/break"
    EXPECT_EQ(keyboard_command({0xe8}), Bytes{0xfe});          // not a keyboard command
    EXPECT_EQ(keyboard_command({0xef}), Bytes{0xfe});
    // A command where a parameter was due starts over.
    EXPECT_EQ(keyboard_command({0xed, 0xee}), (Bytes{kAck, 0xee}));
}

TEST_F(I8042Test, ScancodeSetThroughATranslatingController) {
    // Set 2 reads as 0x41 through translation, as on a PC.
    EXPECT_EQ(keyboard_command({0xf0, 0x00}), (Bytes{kAck, kAck, 0x41}));
    EXPECT_EQ(keyboard_command({0xf0, 0x04}), (Bytes{kAck, 0xfe}));  // no set 4
}

TEST_F(I8042Test, RawPortReportsSet2AndSwitchesSets) {
    // i8042.direct=1: Linux clears XLATE and atkbd sees the keyboard's own bytes.
    write_command_byte(0x45 & ~kCtrXlate);
    EXPECT_EQ(keyboard_command({0xf2}), (Bytes{kAck, 0xab, 0x83}));
    EXPECT_EQ(keyboard_command({0xf0, 0x00}), (Bytes{kAck, kAck, 0x02}));
    EXPECT_EQ(keyboard_command({0xf0, 0x03}), (Bytes{kAck, kAck}));
    EXPECT_EQ(keyboard_command({0xf0, 0x00}), (Bytes{kAck, kAck, 0x03}));
    EXPECT_EQ(keyboard_command({0xf5}), Bytes{kAck});  // defaults: back to set 2
    EXPECT_EQ(keyboard_command({0xf0, 0x00}), (Bytes{kAck, kAck, 0x02}));
}

TEST_F(I8042Test, GuestThatNeverReadsCannotGrowTheKeyboardBuffer) {
    for (int i = 0; i < 100; ++i) kbc->write_data(0xf2);
    // One byte in the controller, the keyboard's 16 behind it.
    EXPECT_EQ(drain().size(), 1 + Ps2Keyboard::kBufferSize);
}

// --- Ctrl-Alt-Del ---

TEST_F(I8042Test, CtrlAltDelAfterProbeReachesAtkbdAsSet1) {
    linux_i8042_init();
    atkbd_probe();
    irq->clear_history();
    ASSERT_TRUE(kbc->send_ctrl_alt_del());
    // The controller swallows the set-2 break prefixes: 8 bytes, 8 interrupts.
    EXPECT_EQ(drain(), kCtrlAltDelSet1);
    EXPECT_EQ(irq->rising_edges(), kCtrlAltDelSet1.size());
    EXPECT_FALSE(irq->level());
}

TEST_F(I8042Test, CtrlAltDelOnARawPortInEachSet) {
    write_command_byte(0x45 & ~kCtrXlate);
    ASSERT_TRUE(kbc->send_ctrl_alt_del());
    EXPECT_EQ(drain(), kCtrlAltDelSet2);
    for (auto [set, expected] : {std::pair{1, kCtrlAltDelSet1}, std::pair{3, kCtrlAltDelSet3}}) {
        EXPECT_EQ(keyboard_command({0xf0, static_cast<uint8_t>(set)}), (Bytes{kAck, kAck}));
        ASSERT_TRUE(kbc->send_ctrl_alt_del());
        EXPECT_EQ(drain(), expected) << "set " << set;
    }
}

TEST_F(I8042Test, CtrlAltDelWaitsForASlowReader) {
    ASSERT_TRUE(kbc->send_ctrl_alt_del());
    Bytes got{kbc->read_data()};
    // The guest polls, sends a command to the controller, takes its time.
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(kbc->read_status() & kOutputFull);
    // A second sequence does not fit behind the first: refused whole, so the
    // first is not cut short either.
    auto again = kbc->send_ctrl_alt_del();
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().kind(), ErrorKind::NotAllowed);
    while (kbc->read_status() & kOutputFull) got.push_back(kbc->read_data());
    EXPECT_EQ(got, kCtrlAltDelSet1);
    ASSERT_TRUE(kbc->send_ctrl_alt_del());
    EXPECT_EQ(drain(), kCtrlAltDelSet1);
}

TEST_F(I8042Test, CtrlAltDelHeldWhileKeyboardInterfaceDisabled) {
    kbc->write_command(0xad);
    ASSERT_TRUE(kbc->send_ctrl_alt_del());
    EXPECT_FALSE(kbc->read_status() & kOutputFull);
    kbc->write_command(0xae);
    EXPECT_EQ(drain(), kCtrlAltDelSet1);
}

TEST_F(I8042Test, CtrlAltDelRefusedWhileScanningDisabled) {
    EXPECT_EQ(keyboard_command({0xf5}), Bytes{kAck});  // what atkbd does while probing
    auto r = kbc->send_ctrl_alt_del();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::NotAllowed);
    EXPECT_FALSE(kbc->read_status() & kOutputFull);
    EXPECT_EQ(keyboard_command({0xf4}), Bytes{kAck});
    ASSERT_TRUE(kbc->send_ctrl_alt_del());
    EXPECT_EQ(drain(), kCtrlAltDelSet1);
}

TEST_F(I8042Test, CtrlAltDelFromAnotherThreadArrivesWhole) {
    // The event loop types while a vCPU reads: every sequence comes out
    // whole and in order, however the two interleave.
    std::atomic<bool> done{false};
    std::atomic<int> sent{0};
    std::thread loop([&] {
        for (int i = 0; i < 50; ++i) {
            while (!kbc->send_ctrl_alt_del()) std::this_thread::yield();
            ++sent;
        }
        done = true;
    });
    Bytes got;
    while (!done || (kbc->read_status() & kOutputFull)) {
        if (kbc->read_status() & kOutputFull) got.push_back(kbc->read_data());
    }
    loop.join();
    ASSERT_EQ(got.size(), sent * kCtrlAltDelSet1.size());
    for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(got[i], kCtrlAltDelSet1[i % kCtrlAltDelSet1.size()]) << "byte " << i;
}

}  // namespace
}  // namespace rv
