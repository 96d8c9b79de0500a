// The 82540EM's 64-word serial EEPROM (a 93C46-style microwire part) and
// the two ways the MAC exposes it: bit-banging through EECD, which the
// Linux e1000 driver uses on this chip, and the EERD read register.
// Read-only: write and erase opcodes are clocked in and ignored, so a guest
// cannot change the MAC address or break the checksum for the next boot.
#pragma once

#include <array>
#include <cstdint>

#include "base/error.h"
#include "snapshot/state_codec.h"

namespace rv::e1000 {

inline constexpr uint16_t kEepromWords = 64;
inline constexpr uint16_t kEepromChecksumWord = 0x3F;
inline constexpr uint16_t kEepromChecksumSum = 0xBABA;  // words 0..0x3F add up to this

class Eeprom {
  public:
    explicit Eeprom(const std::array<uint8_t, 6>& mac);

    uint16_t word(uint16_t index) const { return m_words[index % kEepromWords]; }

    // EECD as the guest reads it: its own SK/CS/DI/FWE/REQ bits, GNT when
    // REQ is set (nobody else uses the EEPROM), PRES, and DO from the part.
    uint32_t read_eecd() const;
    // Drives the microwire pins: CS rising starts a command, SK rising
    // clocks DI in, SK falling moves DO to the next data bit.
    void write_eecd(uint32_t value);

    // EERD: a write with START completes at once with DONE and the data.
    uint32_t read_eerd() const { return m_eerd; }
    void write_eerd(uint32_t value);

    // Power-on state of the interface (the contents never change).
    void reset();

    // The contents and where the interface is: a microwire command being
    // clocked in or a read being clocked out, and the last EERD result.
    // Versioned with the e1000's State, which holds it.
    struct State {
        std::array<uint16_t, kEepromWords> words{};
        uint32_t eecd{0};  // the guest-driven EECD bits
        uint32_t eerd{0};
        uint32_t shift_in{0};  // bits clocked in since CS rose (opcode, address)
        uint32_t bits_in{0};
        bool reading{false};
        uint16_t read_addr{0};  // while reading: the first word addressed
        uint32_t bits_out{0};   // while reading: data bits clocked out so far

        void encode(snapshot::Writer& w) const;
        static State decode(snapshot::Reader& r);
        bool operator==(const State&) const = default;
    };
    State save() const;
    // A state no part could be in (a bad checksum, an EERD result that is
    // not the word it names, a command half clocked in with CS low, ...):
    // InvalidInput. check() first; restore() takes only what it accepted.
    static Result<void> check(const State& state);
    void restore(const State& state);

  private:
    std::array<uint16_t, kEepromWords> m_words{};
    uint32_t m_eecd{0};  // guest-driven bits only
    uint32_t m_eerd{0};
    // Microwire shift state: bits clocked in since CS rose, and once a READ
    // command (110b + 6 address bits) is complete, which data bit DO shows.
    uint32_t m_shift_in{0};
    uint32_t m_bits_in{0};
    bool m_reading{false};
    uint16_t m_read_addr{0};
    uint32_t m_bits_out{0};  // falling SK edges since the address completed
};

}  // namespace rv::e1000
