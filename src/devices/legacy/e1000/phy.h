// The Marvell 88E1011 copper PHY behind the 82540EM's MDIO interface (MDIC),
// modelled as a link that is always up at 1000 Mb/s full duplex with
// auto-negotiation complete against a partner advertising everything. That
// is what Linux's e1000_setup_link / e1000_check_for_link need to see; the
// speed the backend really has is the host's business.
#pragma once

#include <array>
#include <cstdint>

#include "base/error.h"
#include "snapshot/state_codec.h"

namespace rv::e1000 {

inline constexpr uint32_t kPhyAddress = 1;  // where the 82540's PHY answers

// MII / M88 register numbers.
namespace phy_reg {
inline constexpr uint8_t kCtrl = 0x00;
inline constexpr uint8_t kStatus = 0x01;
inline constexpr uint8_t kId1 = 0x02;
inline constexpr uint8_t kId2 = 0x03;
inline constexpr uint8_t kAutonegAdv = 0x04;
inline constexpr uint8_t kLpAbility = 0x05;
inline constexpr uint8_t kAutonegExp = 0x06;
inline constexpr uint8_t k1000tCtrl = 0x09;
inline constexpr uint8_t k1000tStatus = 0x0A;
inline constexpr uint8_t kExtStatus = 0x0F;
inline constexpr uint8_t kM88SpecCtrl = 0x10;
inline constexpr uint8_t kM88SpecStatus = 0x11;
inline constexpr uint8_t kM88ExtSpecCtrl = 0x14;
}  // namespace phy_reg

inline constexpr uint16_t kPhyCtrlReset = 1u << 15;
inline constexpr uint16_t kPhyCtrlRestartAutoneg = 1u << 9;
inline constexpr uint16_t kPhyStatusLinkUp = 1u << 2;
inline constexpr uint16_t kPhyStatusAutonegComplete = 1u << 5;

class Phy {
  public:
    Phy() { reset(); }

    // Power-on register values (also what PHY_CTRL.RESET and CTRL.PHY_RST do).
    void reset();

    // One MDIC write: performs the read or write at once and returns the
    // MDIC value the guest then reads (READY set; ERROR for a PHY address
    // nobody answers at or a bad opcode; data filled in for reads).
    uint32_t mdic_access(uint32_t mdic);

    uint16_t read(uint8_t reg) const { return m_regs[reg & 31]; }
    void write(uint8_t reg, uint16_t value);

    // The 32 registers (the MDIC register itself is the MAC's). Versioned
    // with the e1000's State, which holds it.
    struct State {
        std::array<uint16_t, 32> regs{};

        void encode(snapshot::Writer& w) const {
            for (uint16_t v : regs) w.u16(v);
        }
        static State decode(snapshot::Reader& r) {
            State s;
            for (uint16_t& v : s.regs) v = r.u16();
            return s;
        }
        bool operator==(const State&) const = default;
    };
    State save() const { return State{m_regs}; }
    // Read-only registers other than this PHY's, or a self-clearing control
    // bit left set: InvalidInput. check() first; restore() takes only what
    // it accepted.
    static Result<void> check(const State& state);
    void restore(const State& state) { m_regs = state.regs; }

  private:
    std::array<uint16_t, 32> m_regs{};
};

}  // namespace rv::e1000
