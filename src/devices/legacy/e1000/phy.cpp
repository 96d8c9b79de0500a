#include "devices/legacy/e1000/phy.h"

#include "devices/legacy/e1000/e1000_regs.h"

namespace rv::e1000 {

void Phy::reset() {
    m_regs.fill(0);
    // Auto-negotiation enabled, full duplex, speed select 1000.
    m_regs[phy_reg::kCtrl] = 0x1140;
    // 10/100 capable, extended status, preamble suppression, AN able,
    // AN complete, link up, extended capabilities.
    m_regs[phy_reg::kStatus] = 0x796D;
    // OUI 00:50:43 as the 88E1011 reports it (Linux matches 0x01410C20
    // with the revision nibble masked off).
    m_regs[phy_reg::kId1] = 0x0141;
    m_regs[phy_reg::kId2] = 0x0C20;
    // Advertise 10/100 half/full, pause and asymmetric pause, selector 802.3.
    m_regs[phy_reg::kAutonegAdv] = 0x0DE1;
    // The partner: 10/100 half/full, pause, acknowledged.
    m_regs[phy_reg::kLpAbility] = 0x45E1;
    m_regs[phy_reg::kAutonegExp] = 0x0001;  // partner is AN able
    m_regs[phy_reg::k1000tCtrl] = 0x0300;   // advertise 1000 half/full
    // Local and remote receiver OK, partner 1000 full and half.
    m_regs[phy_reg::k1000tStatus] = 0x3C00;
    m_regs[phy_reg::kExtStatus] = 0x3000;  // 1000BASE-T full/half capable
    m_regs[phy_reg::kM88SpecCtrl] = 0x0068;
    // 1000 Mb/s, full duplex, page received, speed/duplex resolved, link up.
    m_regs[phy_reg::kM88SpecStatus] = 0xAC00;
    m_regs[phy_reg::kM88ExtSpecCtrl] = 0x0C60;
}

void Phy::write(uint8_t reg, uint16_t value) {
    reg &= 31;
    switch (reg) {
        case phy_reg::kCtrl:
            if (value & kPhyCtrlReset) {
                reset();
                return;
            }
            // Reset and restart-AN self-clear; AN completes at once.
            m_regs[reg] = value & static_cast<uint16_t>(~(kPhyCtrlReset | kPhyCtrlRestartAutoneg));
            return;
        case phy_reg::kStatus:
        case phy_reg::kId1:
        case phy_reg::kId2:
        case phy_reg::kLpAbility:
        case phy_reg::kAutonegExp:
        case phy_reg::k1000tStatus:
        case phy_reg::kExtStatus:
        case phy_reg::kM88SpecStatus:
            return;  // read-only
        default:
            m_regs[reg] = value;
    }
}

uint32_t Phy::mdic_access(uint32_t mdic) {
    uint32_t phy = (mdic >> 21) & 0x1F;
    uint8_t reg = static_cast<uint8_t>((mdic >> 16) & 0x1F);
    uint32_t op = mdic & (3u << 26);
    uint32_t result = (mdic & ~(kMdicReady | kMdicError)) | kMdicReady;
    if (phy != kPhyAddress || (op != kMdicOpRead && op != kMdicOpWrite)) return result | kMdicError;
    if (op == kMdicOpWrite) {
        write(reg, static_cast<uint16_t>(mdic));
        return result;
    }
    return (result & 0xFFFF0000u) | read(reg);
}


Result<void> Phy::check(const State& s) {
    const Phy fresh;
    for (uint8_t reg :
         {phy_reg::kStatus, phy_reg::kId1, phy_reg::kId2, phy_reg::kLpAbility, phy_reg::kAutonegExp,
          phy_reg::k1000tStatus, phy_reg::kExtStatus, phy_reg::kM88SpecStatus}) {
        if (s.regs[reg] != fresh.read(reg))
            return input_error("e1000 PHY state: read-only register {} is {:#06x}, not {:#06x}",
                               reg, s.regs[reg], fresh.read(reg));
    }
    if (s.regs[phy_reg::kCtrl] & (kPhyCtrlReset | kPhyCtrlRestartAutoneg))
        return input_error("e1000 PHY state: control {:#06x} with a self-clearing bit set",
                           s.regs[phy_reg::kCtrl]);
    return {};
}

}  // namespace rv::e1000
