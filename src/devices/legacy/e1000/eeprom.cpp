#include "devices/legacy/e1000/eeprom.h"

#include "devices/legacy/e1000/e1000_regs.h"

namespace rv::e1000 {

namespace {

constexpr uint32_t kGuestBits = kEecdSk | kEecdCs | kEecdDi | kEecdFwe | kEecdReq;
constexpr uint32_t kOpcodeBits = 3;
constexpr uint32_t kAddressBits = 6;  // 64-word part: EECD.EE_SIZE reads 0
constexpr uint32_t kOpcodeRead = 0b110;

// Word offsets of the fields a driver looks at (8254x SDM 5.6).
constexpr uint16_t kWordIdLed = 0x04;
constexpr uint16_t kWordInitControl1 = 0x0A;
constexpr uint16_t kWordSubsystemId = 0x0B;
constexpr uint16_t kWordSubsystemVendor = 0x0C;
constexpr uint16_t kWordDeviceId = 0x0D;
constexpr uint16_t kWordVendorId = 0x0E;
constexpr uint16_t kWordInitControl2 = 0x0F;

}  // namespace

Eeprom::Eeprom(const std::array<uint8_t, 6>& mac) {
    for (uint16_t i = 0; i < 3; ++i)
        m_words[i] = static_cast<uint16_t>(mac[2 * i] | (mac[2 * i + 1] << 8));
    // 0xFFFF: "use the default LED configuration" (Linux e1000_id_led_init).
    m_words[kWordIdLed] = 0xFFFF;
    // Load the subsystem and device IDs below at power-on.
    m_words[kWordInitControl1] = 0x0003;
    m_words[kWordSubsystemId] = kSubsystemId;
    m_words[kWordSubsystemVendor] = kVendorIntel;
    m_words[kWordDeviceId] = kDevice82540Em;
    m_words[kWordVendorId] = kVendorIntel;
    // PAUSE and ASM_DIR advertised: the driver derives its default flow
    // control from these two bits (e1000_setup_link).
    m_words[kWordInitControl2] = 0x3000;
    uint16_t sum = 0;
    for (uint16_t i = 0; i < kEepromChecksumWord; ++i)
        sum = static_cast<uint16_t>(sum + m_words[i]);
    m_words[kEepromChecksumWord] = static_cast<uint16_t>(kEepromChecksumSum - sum);
}

void Eeprom::reset() {
    m_eecd = 0;
    m_eerd = 0;
    m_shift_in = 0;
    m_bits_in = 0;
    m_reading = false;
    m_read_addr = 0;
    m_bits_out = 0;
}

uint32_t Eeprom::read_eecd() const {
    uint32_t value = m_eecd | kEecdPres;
    if (m_eecd & kEecdReq) value |= kEecdGnt;
    // DO idles high (the part's "ready"); during a read it carries the
    // addressed word MSB first, continuing into the next word as a real
    // 93C46 does in sequential read.
    bool out = true;
    if (m_reading) {
        uint32_t bit = m_bits_out % 16;
        uint16_t word = m_words[(m_read_addr + m_bits_out / 16) % kEepromWords];
        out = (word >> (15 - bit)) & 1;
    }
    if (out) value |= kEecdDo;
    return value;
}

void Eeprom::write_eecd(uint32_t value) {
    uint32_t old = m_eecd;
    m_eecd = value & kGuestBits;
    if (!(m_eecd & kEecdCs)) {
        // Deselected: the next selection starts a new command.
        m_shift_in = 0;
        m_bits_in = 0;
        m_reading = false;
        return;
    }
    if (!(old & kEecdCs)) return;  // just selected; clocks count from here
    bool sk_rose = (m_eecd & kEecdSk) && !(old & kEecdSk);
    bool sk_fell = !(m_eecd & kEecdSk) && (old & kEecdSk);
    if (sk_fell) {
        if (m_reading && m_bits_in > kOpcodeBits + kAddressBits) ++m_bits_out;
        if (m_reading && m_bits_in == kOpcodeBits + kAddressBits) ++m_bits_in;  // address done
        return;
    }
    if (!sk_rose || m_reading) return;  // data phase ignores DI
    // A start bit (DI high) precedes the opcode on a real part; Linux's
    // microwire code sends the opcode 110b whose leading 1 is that start
    // bit, so leading zeros are skipped and the count starts at the first 1.
    if (m_bits_in == 0 && !(m_eecd & kEecdDi)) return;
    m_shift_in = (m_shift_in << 1) | ((m_eecd & kEecdDi) ? 1 : 0);
    if (++m_bits_in < kOpcodeBits + kAddressBits) return;
    uint32_t opcode = (m_shift_in >> kAddressBits) & 0x7;
    if (opcode == kOpcodeRead) {
        m_reading = true;
        m_read_addr = static_cast<uint16_t>(m_shift_in & (kEepromWords - 1));
        // m_bits_in is bumped once more on the falling edge that ends the
        // address, after which each falling edge advances DO.
        m_bits_out = 0;
    } else {
        // Write, erase and EWEN/EWDS: accepted and ignored (read-only part).
        m_shift_in = 0;
        m_bits_in = 0;
    }
}

void Eeprom::write_eerd(uint32_t value) {
    if (!(value & kEerdStart)) {
        m_eerd = value & ~(kEerdDone | 0xFFFF0000u);
        return;
    }
    uint32_t addr = (value >> 8) & 0xFF;
    // Addresses past the 64-word part read as all-ones, as an empty EEPROM cell.
    uint16_t data = addr < kEepromWords ? m_words[addr] : 0xFFFF;
    m_eerd = (uint32_t{data} << 16) | (addr << 8) | kEerdDone;
}


void Eeprom::State::encode(snapshot::Writer& w) const {
    for (uint16_t word : words) w.u16(word);
    for (uint32_t v : {eecd, eerd, shift_in, bits_in}) w.u32(v);
    w.boolean(reading);
    w.u16(read_addr);
    w.u32(bits_out);
}

Eeprom::State Eeprom::State::decode(snapshot::Reader& r) {
    State s;
    for (uint16_t& word : s.words) word = r.u16();
    for (uint32_t* v : {&s.eecd, &s.eerd, &s.shift_in, &s.bits_in}) *v = r.u32();
    s.reading = r.boolean();
    s.read_addr = r.u16();
    s.bits_out = r.u32();
    return s;
}

Eeprom::State Eeprom::save() const {
    // Where a finished read pointed and how far it got is not observable
    // once it ended (CS low or a new command): saved as 0, so equal
    // interfaces give equal states.
    return State{.words = m_words,
                 .eecd = m_eecd,
                 .eerd = m_eerd,
                 .shift_in = m_shift_in,
                 .bits_in = m_bits_in,
                 .reading = m_reading,
                 .read_addr = m_reading ? m_read_addr : uint16_t{0},
                 .bits_out = m_reading ? m_bits_out : 0};
}

Result<void> Eeprom::check(const State& s) {
    uint16_t sum = 0;
    for (uint16_t word : s.words) sum = static_cast<uint16_t>(sum + word);
    // The contents are adopted, not rebuilt from the MAC: they are what the
    // guest already read. But the driver refuses an EEPROM whose checksum
    // is wrong, and no part we make has one.
    if (sum != kEepromChecksumSum)
        return input_error("e1000 EEPROM state: the words add up to {:#06x}, not {:#06x}", sum,
                           kEepromChecksumSum);
    if (s.eecd & ~kGuestBits) return input_error("e1000 EEPROM state: EECD {:#x}", s.eecd);
    // EERD holds either the guest's own bits (no START, no DONE, no data)
    // or a finished read: DONE, the address, and the word at it.
    if (s.eerd & kEerdDone) {
        const uint32_t addr = (s.eerd >> 8) & 0xFF;
        const uint16_t data = addr < kEepromWords ? s.words[addr] : 0xFFFF;
        if ((s.eerd & 0xFF) != kEerdDone || (s.eerd >> 16) != data)
            return input_error("e1000 EEPROM state: EERD {:#x} is no read of this EEPROM", s.eerd);
    } else if (s.eerd & (0xFFFF0000u | kEerdStart)) {
        return input_error("e1000 EEPROM state: EERD {:#x} without DONE", s.eerd);
    }
    constexpr uint32_t kCommandBits = kOpcodeBits + kAddressBits;
    const bool selected = s.eecd & kEecdCs;
    if (s.reading) {
        // A READ command is complete: 110b and the address; the falling
        // edge that ends the address bumps the count once more, and only
        // then do data bits go out.
        if (!selected || s.bits_in < kCommandBits || s.bits_in > kCommandBits + 1 ||
            (s.shift_in >> kAddressBits) != kOpcodeRead ||
            s.read_addr != (s.shift_in & (kEepromWords - 1)) ||
            (s.bits_in == kCommandBits && s.bits_out != 0))
            return input_error(
                "e1000 EEPROM state: a read at bit {} of command {:#x} (address {}, {} bits out)",
                s.bits_in, s.shift_in, s.read_addr, s.bits_out);
    } else {
        // Clocking a command in: as many bits as counted, the first a 1.
        const bool shape = s.bits_in == 0 ? s.shift_in == 0 : (s.shift_in >> (s.bits_in - 1)) == 1;
        if (s.bits_in >= kCommandBits || !shape || (!selected && s.bits_in != 0) ||
            s.read_addr != 0 || s.bits_out != 0)
            return input_error("e1000 EEPROM state: {} command bits {:#x}{}", s.bits_in, s.shift_in,
                               selected ? "" : " with CS low");
    }
    return {};
}

void Eeprom::restore(const State& s) {
    m_words = s.words;
    m_eecd = s.eecd;
    m_eerd = s.eerd;
    m_shift_in = s.shift_in;
    m_bits_in = s.bits_in;
    m_reading = s.reading;
    m_read_addr = s.read_addr;
    m_bits_out = s.bits_out;
}

}  // namespace rv::e1000
