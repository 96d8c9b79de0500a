#include "devices/legacy/i8042.h"

#include <gtest/gtest.h>

#include "bus/bus.h"

namespace rv {
namespace {

constexpr uint8_t kOutputFull = 0x01, kInputFull = 0x02, kSystemFlag = 0x04, kLastWasCommand = 0x08,
                  kAuxData = 0x20;

class I8042Test : public ::testing::Test {
  protected:
    int resets = 0;
    std::shared_ptr<I8042> kbc = I8042::create([this] { ++resets; });

    uint8_t command_with_reply(uint8_t command) {
        kbc->write_command(command);
        EXPECT_TRUE(kbc->read_status() & kOutputFull) << "no reply to " << int{command};
        return kbc->read_data();
    }
};

TEST_F(I8042Test, IdleStatusLetsGuestWrite) {
    const uint8_t status = kbc->read_status();
    EXPECT_EQ(status & (kInputFull | kOutputFull), 0);
    EXPECT_NE(status, 0xff);  // Linux treats 0xff as "no controller"
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

TEST_F(I8042Test, UnknownCommandAndStrayDataAreIgnored) {
    kbc->write_command(0xc0);
    kbc->write_data(0xf2);  // a keyboard command with no keyboard
    EXPECT_EQ(kbc->read_status() & kOutputFull, 0);
    EXPECT_EQ(resets, 0);
    EXPECT_EQ(command_with_reply(0x20), 0x45);
}

TEST_F(I8042Test, NewCommandCancelsPendingParameter) {
    kbc->write_command(0xd1);
    kbc->write_command(0x20);
    EXPECT_EQ(kbc->read_data(), 0x45);
    kbc->write_data(0x00);  // no longer an output-port write
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
    byte = 0xfe;
    ASSERT_TRUE(bus.write(PioAddress{0x64}, std::span(&byte, 1)));
    EXPECT_EQ(resets, 1);
}

}  // namespace
}  // namespace rv
