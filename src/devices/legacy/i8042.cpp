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
constexpr uint8_t kCmdByteKbdInterrupt = 0x01;
// Bit 1 (AUX interrupt) is stored but never fires: there is no mouse.
constexpr uint8_t kCmdByteSystemFlag = 0x04;
constexpr uint8_t kCmdByteKbdDisabled = 0x10;
constexpr uint8_t kCmdByteAuxDisabled = 0x20;
constexpr uint8_t kCmdByteTranslate = 0x40;
// Keyboard interrupt on, system flag, scancode translation: what a BIOS
// leaves behind after POST.
constexpr uint8_t kDefaultCommandByte = 0x45;

// Output port: bit 0 is the CPU reset line (active low), bit 1 the A20 gate.
constexpr uint8_t kOutputPortReset = 0x01;
constexpr uint8_t kDefaultOutputPort = 0x03;

constexpr uint8_t kSet2BreakPrefix = 0xf0;

// The 8042's translation of scancode set 2 into set 1 (the table every PC
// controller carries; QEMU, bhyve and 86Box use the same). Codes from 0x80
// up pass through unchanged (prefixes and replies such as 0xE0, 0xFA, 0xAA),
// except the two that collide with set-1 keys.
constexpr uint8_t kSet2ToSet1[128] = {
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
};

uint8_t translate_to_set1(uint8_t code) {
    if (code < 0x80) return kSet2ToSet1[code];
    if (code == 0x83) return 0x41;  // F7
    if (code == 0x84) return 0x54;  // SysRq (Alt+PrintScreen)
    return code;
}

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

I8042::I8042(std::shared_ptr<IrqLine> keyboard_irq, std::function<void()> on_reset)
    : m_irq(std::move(keyboard_irq)),
      m_on_reset(std::move(on_reset)),
      m_command_byte(kDefaultCommandByte),
      m_output_port(kDefaultOutputPort) {}

std::shared_ptr<I8042> I8042::create(std::shared_ptr<IrqLine> keyboard_irq,
                                     std::function<void()> on_reset) {
    // make_shared cannot reach the private constructor.
    return std::shared_ptr<I8042>(new I8042(std::move(keyboard_irq), std::move(on_reset)));
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
    const uint8_t value = m_output;
    if (m_output_full) {
        m_output_full = false;
        // The line drops with the read, before the next byte raises it
        // again: an edge-triggered input needs that edge for every byte.
        set_irq(false);
        update();
    }
    return value;
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
                put_reply(value);
                break;
            case Pending::AuxOutput:
                // With no mouse wired we hand the byte back as keyboard data.
                // Linux's AUX loopback probe reads that as "no AUX port" at
                // once, instead of waiting out a 500 ms timeout during boot.
                put_reply(value);
                break;
            case Pending::AuxDevice:
                log::debug("i8042: byte {:#04x} to absent mouse dropped", value);
                break;
            case Pending::None:
                m_keyboard.receive(value);
                break;
        }
        update();
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
        update();
    }
    if (reset && m_on_reset) m_on_reset();
}

Result<void> I8042::send_ctrl_alt_del() {
    std::lock_guard lock(m_mutex);
    if (!m_keyboard.scanning()) return not_allowed_error("the guest has not enabled its keyboard");
    if (!m_keyboard.press_ctrl_alt_del())
        return not_allowed_error("the guest has not read the keys sent before");
    update();
    return {};
}

bool I8042::handle_command(uint8_t command) {
    switch (command) {
        case 0x20:  // read command byte
            put_reply(m_command_byte);
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
            put_reply(0x01);
            return false;
        case 0xaa:  // controller self-test: passed, and POST sets the system flag
            m_command_byte |= kCmdByteSystemFlag;
            put_reply(0x55);
            return false;
        case 0xab:  // keyboard interface test: no error
            put_reply(0x00);
            return false;
        case 0xad:  // disable keyboard interface
            m_command_byte |= kCmdByteKbdDisabled;
            return false;
        case 0xae:  // enable keyboard interface
            m_command_byte &= static_cast<uint8_t>(~kCmdByteKbdDisabled);
            return false;
        case 0xd0:  // read output port
            put_reply(m_output_port);
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

void I8042::put_reply(uint8_t value) {
    // The controller waits for the guest to take the byte in the buffer
    // rather than overwrite it; a second reply before that replaces the
    // first (the guest sent a new command without reading the old answer).
    m_reply = value;
}

std::optional<uint8_t> I8042::next_keyboard_byte() {
    if (m_command_byte & kCmdByteKbdDisabled) return std::nullopt;  // clock held low
    while (auto byte = m_keyboard.transmit()) {
        if (!(m_command_byte & kCmdByteTranslate)) return byte;
        if (*byte == kSet2BreakPrefix) {
            m_translate_break = true;
            continue;
        }
        const uint8_t release = std::exchange(m_translate_break, false) ? 0x80 : 0x00;
        return static_cast<uint8_t>(translate_to_set1(*byte) | release);
    }
    return std::nullopt;
}

void I8042::update() {
    if (!m_output_full) {
        std::optional<uint8_t> next = std::exchange(m_reply, std::nullopt);
        if (!next) next = next_keyboard_byte();
        if (next) {
            m_output = *next;
            m_output_full = true;
        }
    }
    // Every byte in the buffer is keyboard-port data (there is no mouse), so
    // it is IRQ 1's whenever the guest enabled that interrupt.
    set_irq(m_output_full && (m_command_byte & kCmdByteKbdInterrupt));
}

void I8042::set_irq(bool level) {
    if (level == m_irq_level) return;
    m_irq_level = level;
    // Under the device lock, so that concurrent accesses cannot reorder changes.
    if (m_irq) m_irq->set_level(level);
}

void I8042::State::encode(snapshot::Writer& w) const {
    keyboard.encode(w);
    for (uint8_t v : {pending, command_byte, output_port, output}) w.u8(v);
    w.boolean(output_full);
    w.boolean(reply.has_value());
    w.u8(reply.value_or(0));
    w.boolean(translate_break);
    w.boolean(last_write_command);
}

I8042::State I8042::State::decode(snapshot::Reader& r) {
    State s;
    s.keyboard = Ps2Keyboard::State::decode(r);
    for (uint8_t* v : {&s.pending, &s.command_byte, &s.output_port, &s.output}) *v = r.u8();
    s.output_full = r.boolean();
    const bool has_reply = r.boolean();
    const uint8_t reply = r.u8();
    if (has_reply) s.reply = reply;
    else if (reply != 0) r.fail("i8042: a reply byte without a reply");
    s.translate_break = r.boolean();
    s.last_write_command = r.boolean();
    return s;
}

I8042::State I8042::save() {
    std::lock_guard lock(m_mutex);
    return State{m_keyboard.save(), static_cast<uint8_t>(m_pending), m_command_byte, m_output_port, m_output,
                 m_output_full, m_reply, m_translate_break, m_last_write_command};
}

Result<void> I8042::restore(const State& s) {
    if (s.pending > static_cast<uint8_t>(Pending::AuxDevice))
        return input_error("i8042 state: pending command kind {}", s.pending);
    if (s.reply && !s.output_full) return input_error("i8042 state: a reply waiting behind an empty buffer");
    std::lock_guard lock(m_mutex);
    RV_TRY_VOID(m_keyboard.restore(s.keyboard));
    m_pending = static_cast<Pending>(s.pending);
    m_command_byte = s.command_byte;
    m_output_port = s.output_port;
    m_output = s.output;
    m_output_full = s.output_full;
    m_reply = s.reply;
    m_translate_break = s.translate_break;
    m_last_write_command = s.last_write_command;
    update();
    return {};
}

}  // namespace rv
