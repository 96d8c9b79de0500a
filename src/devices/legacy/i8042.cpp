#include "devices/legacy/i8042.h"

#include <span>
#include <string_view>
#include <utility>

#include "base/log.h"

namespace rv {

namespace {

// Status register.
constexpr uint8_t kStatusOutputFull = 0x01;
// Bit 1 (input buffer full) is always clear: commands complete at once.
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kStatusLastWasCommand = 0x08;
constexpr uint8_t kStatusNotInhibited = 0x10;  // keyboard unlocked
// Bit 5 (output is AUX data) is never set: there is no mouse.

// Command byte (controller RAM byte 0).
constexpr uint8_t kCmdByteSystemFlag = 0x04;
constexpr uint8_t kCmdByteKbdDisabled = 0x10;
constexpr uint8_t kCmdByteAuxDisabled = 0x20;
// Keyboard interrupt on, system flag, scancode translation: what a BIOS
// leaves behind after POST.
constexpr uint8_t kDefaultCommandByte = 0x45;

// Output port: bit 0 is the CPU reset line (active low), bit 1 the A20 gate.
constexpr uint8_t kOutputPortReset = 0x01;
constexpr uint8_t kDefaultOutputPort = 0x03;

class Port final : public BusDevice {
  public:
    Port(std::shared_ptr<I8042> controller, bool is_command)
        : m_controller(std::move(controller)), m_is_command(is_command) {}

    std::string_view name() const override { return m_is_command ? "i8042-command" : "i8042-data"; }
    void read(uint64_t offset, std::span<uint8_t> data) override {
        for (auto& byte : data) byte = 0xff;  // nothing beyond the one port
        if (offset != 0 || data.empty()) return;
        data[0] = m_is_command ? m_controller->read_status() : m_controller->read_data();
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        if (offset != 0 || data.empty()) return;
        if (m_is_command) {
            m_controller->write_command(data[0]);
        } else {
            m_controller->write_data(data[0]);
        }
    }

  private:
    std::shared_ptr<I8042> m_controller;
    bool m_is_command;
};

}  // namespace

I8042::I8042(std::function<void()> on_reset)
    : m_on_reset(std::move(on_reset)),
      m_command_byte(kDefaultCommandByte),
      m_output_port(kDefaultOutputPort) {}

std::shared_ptr<I8042> I8042::create(std::function<void()> on_reset) {
    // make_shared cannot reach the private constructor.
    return std::shared_ptr<I8042>(new I8042(std::move(on_reset)));
}

std::shared_ptr<BusDevice> I8042::data_port() {
    return std::make_shared<Port>(shared_from_this(), false);
}

std::shared_ptr<BusDevice> I8042::command_port() {
    return std::make_shared<Port>(shared_from_this(), true);
}

uint8_t I8042::read_status() {
    std::lock_guard lock(m_mutex);
    uint8_t status = kStatusNotInhibited;
    if (m_output_full) status |= kStatusOutputFull;
    if (m_command_byte & kCmdByteSystemFlag) status |= kStatusSystemFlag;
    if (m_last_write_command) status |= kStatusLastWasCommand;
    return status;
}

uint8_t I8042::read_data() {
    std::lock_guard lock(m_mutex);
    // An empty buffer reads back the last byte, as the real latch does.
    m_output_full = false;
    return m_output;
}

void I8042::write_data(uint8_t value) {
    bool reset = false;
    {
        std::lock_guard lock(m_mutex);
        m_last_write_command = false;
        const Pending pending = std::exchange(m_pending, Pending::None);
        switch (pending) {
            case Pending::CommandByte:
                m_command_byte = value;
                break;
            case Pending::OutputPort:
                m_output_port = value;
                reset = !(value & kOutputPortReset);
                break;
            case Pending::KbdOutput:
                put_output(value);
                break;
            case Pending::AuxOutput:
                // With no mouse wired we hand the byte back as keyboard data.
                // Linux's AUX loopback probe reads that as "no AUX port" at
                // once, instead of waiting out a 500 ms timeout during boot.
                put_output(value);
                break;
            case Pending::AuxDevice:
                log::debug("i8042: byte {:#04x} to absent mouse dropped", value);
                break;
            case Pending::None:
                log::debug("i8042: byte {:#04x} to absent keyboard dropped", value);
                break;
        }
    }
    if (reset && m_on_reset) m_on_reset();
}

void I8042::write_command(uint8_t command) {
    bool reset = false;
    {
        std::lock_guard lock(m_mutex);
        m_last_write_command = true;
        m_pending = Pending::None;  // a new command abandons a pending one
        reset = handle_command(command);
    }
    if (reset && m_on_reset) m_on_reset();
}

bool I8042::handle_command(uint8_t command) {
    switch (command) {
        case 0x20:  // read command byte
            put_output(m_command_byte);
            return false;
        case 0x60:  // write command byte
            m_pending = Pending::CommandByte;
            return false;
        case 0xa7:  // disable AUX interface
            m_command_byte |= kCmdByteAuxDisabled;
            return false;
        case 0xa8:  // enable AUX interface
            m_command_byte &= static_cast<uint8_t>(~kCmdByteAuxDisabled);
            return false;
        case 0xa9:  // AUX interface test: 0x01 = clock line stuck low, i.e. no AUX port
            put_output(0x01);
            return false;
        case 0xaa:  // controller self-test: passed, and POST sets the system flag
            m_command_byte |= kCmdByteSystemFlag;
            put_output(0x55);
            return false;
        case 0xab:  // keyboard interface test: no error
            put_output(0x00);
            return false;
        case 0xad:  // disable keyboard interface
            m_command_byte |= kCmdByteKbdDisabled;
            return false;
        case 0xae:  // enable keyboard interface
            m_command_byte &= static_cast<uint8_t>(~kCmdByteKbdDisabled);
            return false;
        case 0xd0:  // read output port
            put_output(m_output_port);
            return false;
        case 0xd1:  // write output port
            m_pending = Pending::OutputPort;
            return false;
        case 0xd2:  // write keyboard output buffer
            m_pending = Pending::KbdOutput;
            return false;
        case 0xd3:  // write AUX output buffer
            m_pending = Pending::AuxOutput;
            return false;
        case 0xd4:  // write to AUX device
            m_pending = Pending::AuxDevice;
            return false;
        default:
            break;
    }
    // 0xF0-0xFF pulse output port bits 0-3 low for those clear in the
    // command; bit 0 is the reset line, so 0xFE (the usual one) resets.
    if (command >= 0xf0) return !(command & 0x01);
    log::debug("i8042: ignoring unknown command {:#04x}", command);
    return false;
}

void I8042::put_output(uint8_t value) {
    m_output = value;
    m_output_full = true;
}

}  // namespace rv
