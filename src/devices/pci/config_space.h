// A type-0 PCI configuration header (PCI Local Bus 3.0, 6.1) with BARs and a
// capability list. Every byte has a write mask, so read-only fields stay
// read-only and BAR sizing falls out of the masks: the guest writes all-ones
// and reads back ~(size - 1) plus the type bits, which are not writable.
// Not synchronised: the owning device guards it with its own lock.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/error.h"
#include "devices/pci/pci_device.h"
#include "snapshot/state_codec.h"

namespace rv {

// Register offsets of the type-0 header.
namespace pci_reg {
inline constexpr uint16_t kVendorId = 0x00;
inline constexpr uint16_t kDeviceId = 0x02;
inline constexpr uint16_t kCommand = 0x04;
inline constexpr uint16_t kStatus = 0x06;
inline constexpr uint16_t kRevision = 0x08;
inline constexpr uint16_t kProgIf = 0x09;
inline constexpr uint16_t kSubclass = 0x0A;
inline constexpr uint16_t kClass = 0x0B;
inline constexpr uint16_t kHeaderType = 0x0E;
inline constexpr uint16_t kBar0 = 0x10;
inline constexpr uint16_t kSubsystemVendorId = 0x2C;
inline constexpr uint16_t kSubsystemId = 0x2E;
inline constexpr uint16_t kCapabilityPointer = 0x34;
inline constexpr uint16_t kInterruptLine = 0x3C;
inline constexpr uint16_t kInterruptPin = 0x3D;
}  // namespace pci_reg

inline constexpr uint16_t kPciCommandIo = 1 << 0;
inline constexpr uint16_t kPciCommandMemory = 1 << 1;
inline constexpr uint16_t kPciCommandBusMaster = 1 << 2;
inline constexpr uint16_t kPciCommandIntxDisable = 1 << 10;
inline constexpr uint16_t kPciStatusInterrupt = 1 << 3;
inline constexpr uint16_t kPciStatusCapList = 1 << 4;

inline constexpr uint8_t kPciCapIdVendor = 0x09;
inline constexpr uint8_t kPciCapIdMsix = 0x11;

inline constexpr size_t kPciConfigSize = 256;
inline constexpr uint8_t kPciBarCount = 6;

struct PciHeader {
    uint16_t vendor_id{0};
    uint16_t device_id{0};
    uint8_t revision{0};
    uint8_t class_code{0};
    uint8_t subclass{0};
    uint8_t prog_if{0};
    uint16_t subsystem_vendor_id{0};
    uint16_t subsystem_id{0};
    uint8_t header_type{0};    // 0 = general device; bit 7 = multi-function
    uint8_t interrupt_pin{0};  // 0 none, 1 INTA# .. 4 INTD#
};

class PciConfigSpace {
  public:
    explicit PciConfigSpace(const PciHeader& header);

    // Declares a BAR: size a power of two (>= 16 MMIO, >= 4 I/O), index free
    // (and index + 1 for a 64-bit BAR). The register starts at address 0.
    Result<void> add_bar(const PciBarInfo& bar);
    const std::vector<PciBarInfo>& bars() const { return m_bars; }
    // The address currently programmed into BAR `index` (type bits removed).
    std::optional<uint64_t> bar_address(uint8_t index) const;
    // True when the guest left the all-ones sizing pattern in the BAR.
    bool bar_is_sizing(uint8_t index) const;

    // Appends a capability; `body` is everything after the id and next
    // pointer bytes, `write_mask` (optional, same length as body) says which
    // bits the guest may change. Returns the capability's offset.
    Result<uint8_t> add_capability(uint8_t id, std::span<const uint8_t> body,
                                   std::span<const uint8_t> write_mask = {});

    // Guest accesses: out-of-range bytes read as zero and ignore writes.
    void read(uint16_t offset, std::span<uint8_t> data) const;
    void write(uint16_t offset, std::span<const uint8_t> data);

    // Device-side accesses, bypassing the write masks.
    uint8_t read8(uint16_t offset) const;
    uint16_t read16(uint16_t offset) const;
    uint32_t read32(uint16_t offset) const;
    void set8(uint16_t offset, uint8_t value);
    void set16(uint16_t offset, uint16_t value);
    void set32(uint16_t offset, uint32_t value);
    // Changes which bits of a register the guest may write.
    void set_write_mask8(uint16_t offset, uint8_t mask);
    void set_write_mask16(uint16_t offset, uint16_t mask);

    uint16_t command() const { return read16(pci_reg::kCommand); }

    // The 256 bytes as the guest left them. BARs, capabilities and write
    // masks come from construction, so restore() into a config space built
    // the same way refuses a state that differs in any bit the guest cannot
    // write (another device, BAR layout or capability list).
    struct State {
        static constexpr uint32_t kVersion = 1;
        std::array<uint8_t, kPciConfigSize> bytes{};

        void encode(snapshot::Writer& w) const { w.raw(bytes); }
        static State decode(snapshot::Reader& r) { return State{r.array<kPciConfigSize>()}; }
        bool operator==(const State&) const = default;
    };
    State save() const { return State{m_bytes}; }
    Result<void> restore(const State& state);

  private:
    std::array<uint8_t, kPciConfigSize> m_bytes{};
    std::array<uint8_t, kPciConfigSize> m_write_mask{};
    std::vector<PciBarInfo> m_bars;
    uint8_t m_last_cap{0};      // offset of the last capability, 0 if none
    uint16_t m_next_cap{0x40};  // where the next capability goes
};

// BAR register arithmetic, shared by the config space and the root complex
// (which sees a device's BARs only through config reads).
uint32_t pci_bar_type_bits(const PciBarInfo& bar);
uint32_t pci_bar_low_mask(const PciBarInfo& bar);   // guest-writable bits of the low dword
uint32_t pci_bar_high_mask(const PciBarInfo& bar);  // ... of the high dword (64-bit BARs)
uint64_t pci_bar_address(const PciBarInfo& bar, uint32_t low, uint32_t high);
// True if the registers hold the all-ones sizing pattern (in either half of
// a 64-bit BAR: Linux sizes the halves one after the other).
bool pci_bar_is_sizing(const PciBarInfo& bar, uint32_t low, uint32_t high);

// Little-endian helpers for register images.
inline uint32_t load_le(std::span<const uint8_t> bytes) {
    uint32_t v = 0;
    for (size_t i = 0; i < bytes.size() && i < 4; ++i) v |= uint32_t{bytes[i]} << (8 * i);
    return v;
}
inline void store_le(std::span<uint8_t> bytes, uint64_t value) {
    for (size_t i = 0; i < bytes.size() && i < 8; ++i)
        bytes[i] = static_cast<uint8_t>(value >> (8 * i));
}

}  // namespace rv
