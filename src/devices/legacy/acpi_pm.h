// ACPI fixed-hardware power-management block: PM1a event and control
// registers, enough for an ACPI guest to power the VM off (S5) and, with an
// SCI line, to be asked to shut down by a power-button press.
//
// Layout of the 8-byte block (base 0x600 by default; the FADT's
// PM1a_EVT_BLK = base, PM1_EVT_LEN = 4, PM1a_CNT_BLK = base + 4,
// PM1_CNT_LEN = 2):
//   +0  PM1_STS  16-bit, write 1 to clear
//   +2  PM1_EN   16-bit
//   +4  PM1_CNT  16-bit (SCI_EN always reads 1: there is no SMI_CMD, the
//                machine is always in ACPI mode)
//   +6  unused   reads 0
// Accesses of any width at any offset are taken byte by byte, so a 4-byte
// access at +0 reaches STS and EN together, as a guest may do.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>

#include "base/error.h"
#include "bus/bus.h"
#include "snapshot/state_codec.h"
#include "devices/interrupt.h"

namespace rv {

class AcpiPmDevice final : public BusDevice {
  public:
    static constexpr uint64_t kDefaultBase = 0x600;
    static constexpr uint64_t kLength = 8;
    static constexpr uint64_t kEventBlockOffset = 0;    // PM1a_EVT_BLK, 4 bytes
    static constexpr uint64_t kControlBlockOffset = 4;  // PM1a_CNT_BLK, 2 bytes
    // The \_S5 package in the DSDT must name this SLP_TYP.
    static constexpr uint16_t kSleepTypeSoftOff = 5;

    static constexpr uint16_t kStatusPowerButton = 1 << 8;
    static constexpr uint16_t kStatusWake = 1 << 15;
    static constexpr uint16_t kControlSciEnable = 1 << 0;
    static constexpr uint16_t kControlSleepEnable = 1 << 13;
    static constexpr unsigned kControlSleepTypeShift = 10;

    // on_poweroff runs on the vCPU thread that requested S5, outside the
    // device lock. sci may be null: then the power button cannot interrupt
    // the guest (it still sets PWRBTN_STS for a polling guest).
    explicit AcpiPmDevice(std::function<void()> on_poweroff,
                          std::shared_ptr<IrqLine> sci = nullptr);

    std::string_view name() const override { return "acpi_pm"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Presses the fixed-feature power button: the guest's ACPI driver sees
    // PWRBTN_STS (and an SCI if it enabled PWRBTN_EN) and shuts down.
    void press_power_button();

    struct State {
        static constexpr uint32_t kVersion = 1;
        uint16_t status{0};
        uint16_t enable{0};
        uint16_t control{kControlSciEnable};

        void encode(snapshot::Writer& w) const;
        static State decode(snapshot::Reader& r);
        bool operator==(const State&) const = default;
    };
    State save() const;
    // Drives the SCI to match. A control word with SLP_EN set is refused:
    // that write powers off and is never stored.
    Result<void> restore(const State& state);

  private:
    uint8_t read_byte(uint64_t offset) const;
    void write_byte(uint64_t offset, uint8_t value);
    void update_sci();

    mutable std::mutex m_mutex;
    std::function<void()> m_on_poweroff;
    std::shared_ptr<IrqLine> m_sci;
    uint16_t m_status{0};
    uint16_t m_enable{0};
    uint16_t m_control{kControlSciEnable};
    bool m_sci_level{false};
};

}  // namespace rv
