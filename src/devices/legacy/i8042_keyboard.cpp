#include "devices/legacy/i8042_keyboard.h"

#include <span>
#include <utility>

#include "base/log.h"

namespace rv {

namespace {

// Replies.
constexpr uint8_t kAck = 0xfa;
constexpr uint8_t kResend = 0xfe;  // also the answer to an unknown command or bad parameter
constexpr uint8_t kSelfTestPassed = 0xaa;
constexpr uint8_t kEcho = 0xee;
// An MF2 keyboard. Through a translating controller the second byte reads
// 0x41; atkbd looks only at the first.
constexpr uint8_t kIdFirst = 0xab, kIdSecond = 0x83;

// Every byte from 0xED up is a command, also where a parameter was expected:
// the keyboard starts over with it, which is how a host recovers from a lost
// byte. Parameters (LED bits, typematic rate, scancode set, set-3 key codes)
// are all below.
constexpr uint8_t kFirstCommand = 0xed;

// Left Ctrl, left Alt and Delete pressed, then released in reverse order.
constexpr uint8_t kCtrlAltDelSet1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
constexpr uint8_t kCtrlAltDelSet2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
                                       0x71, 0xf0, 0x11, 0xf0, 0x14};
constexpr uint8_t kCtrlAltDelSet3[] = {0x11, 0x19, 0x64, 0xf0, 0x64, 0xf0, 0x19, 0xf0, 0x11};

}  // namespace

void Ps2Keyboard::receive(uint8_t byte) {
    const Param param = std::exchange(m_param, Param::None);
    if (param != Param::None && byte < kFirstCommand) {
        take_param(param, byte);
    } else {
        run_command(byte);
    }
}

void Ps2Keyboard::run_command(uint8_t command) {
    switch (command) {
        case 0xed:  // set LEDs
            reply(kAck);
            m_param = Param::Leds;
            return;
        case 0xee:  // echo
            reply(kEcho);
            return;
        case 0xf0:  // get or set the scancode set
            reply(kAck);
            m_param = Param::ScancodeSet;
            return;
        case 0xf2:  // identify
            reply(kAck);
            reply(kIdFirst);
            reply(kIdSecond);
            return;
        case 0xf3:  // set typematic rate and delay
            reply(kAck);
            m_param = Param::Typematic;
            return;
        case 0xf4:  // enable scanning; the buffer is cleared, as the PS/2 spec says
            m_buffer.clear();
            m_scanning = true;
            reply(kAck);
            return;
        case 0xf5:  // defaults, scanning off (atkbd's "deactivate")
            set_defaults();
            m_scanning = false;
            reply(kAck);
            return;
        case 0xf6:  // defaults, scanning stays on
            set_defaults();
            m_scanning = true;
            reply(kAck);
            return;
        case 0xf7:  // set 3: all keys typematic / make-break / make-only / all three
        case 0xf8:
        case 0xf9:
        case 0xfa:
            // Only the key types change, and Ctrl-Alt-Del always sends
            // makes and breaks, so there is nothing to record.
            reply(kAck);
            return;
        case 0xfb:  // set 3: key types for the keys that follow
        case 0xfc:
        case 0xfd:
            reply(kAck);
            m_param = Param::KeyList;
            return;
        case 0xfe:  // resend the last byte sent
            reply(m_last_sent);
            return;
        case 0xff:  // reset: self-test passed
            set_defaults();
            m_scanning = true;
            reply(kAck);
            reply(kSelfTestPassed);
            return;
        default:
            log::debug("i8042 keyboard: unknown command {:#04x}", command);
            reply(kResend);
            return;
    }
}

void Ps2Keyboard::take_param(Param param, uint8_t value) {
    switch (param) {
        case Param::Leds:       // scroll, num and caps lock
        case Param::Typematic:  // repeat rate and delay
            reply(kAck);
            return;
        case Param::ScancodeSet:
            if (value == 0) {
                reply(kAck);
                reply(m_set);
            } else if (value <= 3) {
                m_set = value;
                reply(kAck);
            } else {
                reply(kResend);
            }
            return;
        case Param::KeyList:
            // One key code after another until the next command.
            reply(kAck);
            m_param = Param::KeyList;
            return;
        case Param::None:
            return;
    }
}

void Ps2Keyboard::reply(uint8_t byte) {
    if (m_buffer.size() >= kBufferSize) {
        log::debug("i8042 keyboard: buffer full, reply {:#04x} dropped", byte);
        return;
    }
    m_buffer.push_back(byte);
}

void Ps2Keyboard::set_defaults() {
    m_buffer.clear();
    m_param = Param::None;
    m_set = 2;
}

std::optional<uint8_t> Ps2Keyboard::transmit() {
    if (m_buffer.empty()) return std::nullopt;
    m_last_sent = m_buffer.front();
    m_buffer.pop_front();
    return m_last_sent;
}

bool Ps2Keyboard::press_ctrl_alt_del() {
    if (!m_scanning) return false;
    std::span<const uint8_t> keys = kCtrlAltDelSet2;
    if (m_set == 1) keys = kCtrlAltDelSet1;
    if (m_set == 3) keys = kCtrlAltDelSet3;
    if (m_buffer.size() + keys.size() > kBufferSize) return false;
    m_buffer.insert(m_buffer.end(), keys.begin(), keys.end());
    return true;
}

void Ps2Keyboard::State::encode(snapshot::Writer& w) const {
    w.blob(buffer);
    w.u8(param);
    w.u8(set);
    w.boolean(scanning);
    w.u8(last_sent);
}

Ps2Keyboard::State Ps2Keyboard::State::decode(snapshot::Reader& r) {
    State s;
    s.buffer = r.blob(kBufferSize);
    s.param = r.u8();
    s.set = r.u8();
    s.scanning = r.boolean();
    s.last_sent = r.u8();
    return s;
}

Ps2Keyboard::State Ps2Keyboard::save() const {
    return State{{m_buffer.begin(), m_buffer.end()}, static_cast<uint8_t>(m_param), m_set, m_scanning, m_last_sent};
}

Result<void> Ps2Keyboard::restore(const State& s) {
    if (s.buffer.size() > kBufferSize) return input_error("keyboard state: {} buffered bytes", s.buffer.size());
    if (s.param > static_cast<uint8_t>(Param::KeyList)) return input_error("keyboard state: parameter kind {}", s.param);
    if (s.set < 1 || s.set > 3) return input_error("keyboard state: scancode set {}", s.set);
    m_buffer.assign(s.buffer.begin(), s.buffer.end());
    m_param = static_cast<Param>(s.param);
    m_set = s.set;
    m_scanning = s.scanning;
    m_last_sent = s.last_sent;
    return {};
}

}  // namespace rv
