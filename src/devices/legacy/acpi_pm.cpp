#include "devices/legacy/acpi_pm.h"

#include <utility>

#include "base/log.h"

namespace rv {

namespace {

constexpr uint64_t kStatusOffset = 0;
constexpr uint64_t kEnableOffset = 2;

// PM1_STS bits that can raise an SCI when the matching PM1_EN bit is set
// (timer, global lock, power button, sleep button, RTC alarm).
constexpr uint16_t kSciEvents = 0x0001 | 0x0020 | 0x0100 | 0x0200 | 0x0400;
// PM1_CNT bits that read back: SCI_EN, BM_RLD, SLP_TYP. GBL_RLS and SLP_EN
// are write-only and read as 0.
constexpr uint16_t kControlReadable = 0x0001 | 0x0002 | 0x1c00;

uint16_t set_byte(uint16_t reg, unsigned byte, uint8_t value) {
    const unsigned shift = byte * 8;
    return static_cast<uint16_t>((reg & ~(0xffu << shift)) | (unsigned{value} << shift));
}

}  // namespace

AcpiPmDevice::AcpiPmDevice(std::function<void()> on_poweroff, std::shared_ptr<IrqLine> sci)
    : m_on_poweroff(std::move(on_poweroff)), m_sci(std::move(sci)) {}

void AcpiPmDevice::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_mutex);
    for (size_t i = 0; i < data.size(); ++i) data[i] = read_byte(offset + i);
}

void AcpiPmDevice::write(uint64_t offset, std::span<const uint8_t> data) {
    bool poweroff = false;
    {
        std::lock_guard lock(m_mutex);
        for (size_t i = 0; i < data.size(); ++i) write_byte(offset + i, data[i]);
        // SLP_EN acts once the whole access has landed, so a 16-bit write
        // of SLP_TYP | SLP_EN uses the SLP_TYP written with it.
        if (m_control & kControlSleepEnable) {
            m_control &= static_cast<uint16_t>(~kControlSleepEnable);
            const unsigned sleep_type = (m_control >> kControlSleepTypeShift) & 0x7;
            if (sleep_type == kSleepTypeSoftOff) {
                log::info("acpi_pm: guest requested power off (S5)");
                poweroff = true;
            } else {
                // We do not sleep; report an immediate wake so a guest that
                // entered S1/S3 stops polling WAK_STS and carries on.
                log::info("acpi_pm: ignoring sleep request with SLP_TYP {}", sleep_type);
                m_status |= kStatusWake;
            }
        }
        update_sci();
    }
    if (poweroff && m_on_poweroff) m_on_poweroff();
}

void AcpiPmDevice::press_power_button() {
    std::lock_guard lock(m_mutex);
    m_status |= kStatusPowerButton;
    update_sci();
}

uint8_t AcpiPmDevice::read_byte(uint64_t offset) const {
    const auto byte_of = [](uint16_t reg, uint64_t byte) {
        return static_cast<uint8_t>(reg >> (8 * byte));
    };
    if (offset < kEnableOffset) return byte_of(m_status, offset - kStatusOffset);
    if (offset < kControlBlockOffset) return byte_of(m_enable, offset - kEnableOffset);
    if (offset < kControlBlockOffset + 2) {
        return byte_of((m_control & kControlReadable) | kControlSciEnable,
                       offset - kControlBlockOffset);
    }
    return 0;
}

void AcpiPmDevice::write_byte(uint64_t offset, uint8_t value) {
    if (offset < kEnableOffset) {
        const unsigned shift = 8 * static_cast<unsigned>(offset - kStatusOffset);
        m_status &= static_cast<uint16_t>(~(unsigned{value} << shift));  // write 1 to clear
    } else if (offset < kControlBlockOffset) {
        m_enable = set_byte(m_enable, static_cast<unsigned>(offset - kEnableOffset), value);
    } else if (offset < kControlBlockOffset + 2) {
        m_control = set_byte(m_control, static_cast<unsigned>(offset - kControlBlockOffset), value);
        m_control |= kControlSciEnable;
    }
    // Bytes past PM1_CNT are unused; writes there are dropped.
}

void AcpiPmDevice::update_sci() {
    const bool level = (m_status & m_enable & kSciEvents) != 0;
    if (level == m_sci_level) return;
    m_sci_level = level;
    if (m_sci) m_sci->set_level(level);
}

void AcpiPmDevice::State::encode(snapshot::Writer& w) const {
    w.u16(status);
    w.u16(enable);
    w.u16(control);
}

AcpiPmDevice::State AcpiPmDevice::State::decode(snapshot::Reader& r) {
    State s;
    s.status = r.u16();
    s.enable = r.u16();
    s.control = r.u16();
    return s;
}

AcpiPmDevice::State AcpiPmDevice::save() const {
    std::lock_guard lock(m_mutex);
    return State{m_status, m_enable, m_control};
}

Result<void> AcpiPmDevice::restore(const State& s) {
    if ((s.control & kControlSleepEnable) || !(s.control & kControlSciEnable))
        return input_error("acpi_pm state: PM1 control {:#06x}", s.control);
    std::lock_guard lock(m_mutex);
    m_status = s.status;
    m_enable = s.enable;
    m_control = s.control;
    update_sci();
    return {};
}

}  // namespace rv
