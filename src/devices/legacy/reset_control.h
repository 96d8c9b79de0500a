// The chipset's Reset Control Register at port 0xCF9 (PIIX/ICH): a write with
// RST_CPU (bit 2) set resets the machine. Linux uses it for "reboot=pci" and,
// through the FADT's RESET_REG (which points here), for its default ACPI
// reboot. The byte shares the 0xCF8-0xCFF range with PCI configuration
// mechanism #1 (a dword at 0xCF8, data at 0xCFC), and a bus range has one
// owner, so this device takes the whole range: a one-byte access at 0xCF9 is
// the reset register, every other access goes to the PCI configuration ports
// (or reads as all ones where there is no PCI bus).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "bus/bus.h"

namespace rv {

class ResetControl final : public BusDevice {
  public:
    static constexpr uint64_t kBase = 0xCF8;  // insert at kBase, length kLength
    static constexpr uint64_t kLength = 8;
    static constexpr uint64_t kRegisterOffset = 1;  // port 0xCF9
    static constexpr uint8_t kSysRst = 1 << 1;      // hard (not soft) reset: kept, no effect
    static constexpr uint8_t kRstCpu = 1 << 2;      // 0 -> reset

    // on_reset runs on the vCPU thread that wrote the register, outside the lock.
    explicit ResetControl(std::function<void()> on_reset) : m_on_reset(std::move(on_reset)) {}

    // The PCI configuration ports (offsets relative to 0xCF8), or null.
    void set_config_ports(std::shared_ptr<BusDevice> ports);

    std::string_view name() const override { return "reset-control"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

  private:
    std::function<void()> m_on_reset;
    std::mutex m_lock;
    uint8_t m_value{0};
    std::shared_ptr<BusDevice> m_config_ports;
};

}  // namespace rv
