#include "devices/pci/config_space.h"

#include <algorithm>

namespace rv {

namespace {

bool is_power_of_two(uint64_t v) {
    return v != 0 && (v & (v - 1)) == 0;
}

}  // namespace

uint32_t pci_bar_type_bits(const PciBarInfo& bar) {
    if (bar.io) return 0x1;
    uint32_t bits = 0;
    if (bar.is_64bit) bits |= 0x4;  // type 10b in bits 2:1
    if (bar.prefetchable) bits |= 0x8;
    return bits;
}

// I/O space on x86 is 16 bits wide, so the upper half of an I/O BAR is
// hardwired to zero (the spec allows it).
uint32_t pci_bar_low_mask(const PciBarInfo& bar) {
    if (bar.io) return static_cast<uint32_t>(~(bar.size - 1)) & 0xFFFCu;
    return static_cast<uint32_t>(~(bar.size - 1)) & ~0xFu;
}

uint32_t pci_bar_high_mask(const PciBarInfo& bar) {
    return bar.is_64bit ? static_cast<uint32_t>(~((bar.size - 1) >> 32)) : 0;
}

uint64_t pci_bar_address(const PciBarInfo& bar, uint32_t low, uint32_t high) {
    uint64_t addr = low & (bar.io ? ~0x3u : ~0xFu);
    if (bar.is_64bit) addr |= uint64_t{high} << 32;
    return addr;
}

bool pci_bar_is_sizing(const PciBarInfo& bar, uint32_t low, uint32_t high) {
    uint32_t low_mask = pci_bar_low_mask(bar);
    if ((low & low_mask) == low_mask) return true;
    uint32_t high_mask = pci_bar_high_mask(bar);
    return bar.is_64bit && high_mask != 0 && (high & high_mask) == high_mask;
}

PciConfigSpace::PciConfigSpace(const PciHeader& h) {
    set16(pci_reg::kVendorId, h.vendor_id);
    set16(pci_reg::kDeviceId, h.device_id);
    set8(pci_reg::kRevision, h.revision);
    set8(pci_reg::kProgIf, h.prog_if);
    set8(pci_reg::kSubclass, h.subclass);
    set8(pci_reg::kClass, h.class_code);
    set8(pci_reg::kHeaderType, h.header_type);
    set16(pci_reg::kSubsystemVendorId, h.subsystem_vendor_id);
    set16(pci_reg::kSubsystemId, h.subsystem_id);
    set8(pci_reg::kInterruptPin, h.interrupt_pin);
    // Guest-writable: decode enables, bus master, INTx disable; the
    // interrupt line (firmware's note to the OS); cache line size, latency.
    set_write_mask16(pci_reg::kCommand, kPciCommandIo | kPciCommandMemory | kPciCommandBusMaster |
                                            kPciCommandIntxDisable);
    set_write_mask8(pci_reg::kInterruptLine, 0xFF);
    set_write_mask8(0x0C, 0xFF);
    set_write_mask8(0x0D, 0xFF);
}

Result<void> PciConfigSpace::add_bar(const PciBarInfo& bar) {
    uint8_t last = bar.is_64bit ? bar.index + 1 : bar.index;
    if (last >= kPciBarCount) return make_error("pci: BAR {} out of range", bar.index);
    if (bar.io && bar.is_64bit) return make_error("pci: I/O BAR {} cannot be 64-bit", bar.index);
    if (!is_power_of_two(bar.size) || bar.size < (bar.io ? 4u : 16u) ||
        (bar.io && bar.size > 0x10000) || (!bar.is_64bit && bar.size > (1ull << 31)))
        return make_error("pci: BAR {} has bad size {:#x}", bar.index, bar.size);
    for (const auto& b : m_bars) {
        uint8_t b_last = b.is_64bit ? b.index + 1 : b.index;
        if (bar.index <= b_last && b.index <= last)
            return make_error("pci: BAR {} overlaps BAR {}", bar.index, b.index);
    }
    uint16_t reg = pci_reg::kBar0 + 4 * bar.index;
    set32(reg, pci_bar_type_bits(bar));
    uint32_t low = pci_bar_low_mask(bar);
    for (int i = 0; i < 4; ++i) m_write_mask[reg + i] = static_cast<uint8_t>(low >> (8 * i));
    if (bar.is_64bit) {
        set32(reg + 4, 0);
        uint32_t high = pci_bar_high_mask(bar);
        for (int i = 0; i < 4; ++i)
            m_write_mask[reg + 4 + i] = static_cast<uint8_t>(high >> (8 * i));
    }
    m_bars.push_back(bar);
    return {};
}

std::optional<uint64_t> PciConfigSpace::bar_address(uint8_t index) const {
    auto it = std::find_if(m_bars.begin(), m_bars.end(),
                           [&](const PciBarInfo& b) { return b.index == index; });
    if (it == m_bars.end()) return std::nullopt;
    uint16_t reg = pci_reg::kBar0 + 4 * index;
    return pci_bar_address(*it, read32(reg), it->is_64bit ? read32(reg + 4) : 0);
}

bool PciConfigSpace::bar_is_sizing(uint8_t index) const {
    auto it = std::find_if(m_bars.begin(), m_bars.end(),
                           [&](const PciBarInfo& b) { return b.index == index; });
    if (it == m_bars.end()) return false;
    uint16_t reg = pci_reg::kBar0 + 4 * index;
    return pci_bar_is_sizing(*it, read32(reg), it->is_64bit ? read32(reg + 4) : 0);
}

Result<uint8_t> PciConfigSpace::add_capability(uint8_t id, std::span<const uint8_t> body,
                                               std::span<const uint8_t> write_mask) {
    if (!write_mask.empty() && write_mask.size() != body.size())
        return make_error("pci: capability {:#x} write mask has the wrong length", id);
    size_t len = 2 + body.size();
    if (m_next_cap + len > kPciConfigSize)
        return make_error("pci: no room for capability {:#x} ({} bytes)", id, len);
    auto offset = static_cast<uint8_t>(m_next_cap);
    set8(offset, id);
    set8(offset + 1, 0);
    std::copy(body.begin(), body.end(), m_bytes.begin() + offset + 2);
    if (!write_mask.empty())
        std::copy(write_mask.begin(), write_mask.end(), m_write_mask.begin() + offset + 2);
    if (m_last_cap == 0) {
        set8(pci_reg::kCapabilityPointer, offset);
        set16(pci_reg::kStatus, read16(pci_reg::kStatus) | kPciStatusCapList);
    } else {
        set8(m_last_cap + 1, offset);
    }
    m_last_cap = offset;
    // The spec requires dword-aligned capabilities.
    m_next_cap = static_cast<uint16_t>((offset + len + 3) & ~size_t{3});
    return offset;
}

void PciConfigSpace::read(uint16_t offset, std::span<uint8_t> data) const {
    for (size_t i = 0; i < data.size(); ++i) {
        size_t at = size_t{offset} + i;
        data[i] = at < kPciConfigSize ? m_bytes[at] : 0;
    }
}

void PciConfigSpace::write(uint16_t offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); ++i) {
        size_t at = size_t{offset} + i;
        if (at >= kPciConfigSize) break;
        uint8_t mask = m_write_mask[at];
        m_bytes[at] = static_cast<uint8_t>((m_bytes[at] & ~mask) | (data[i] & mask));
    }
}

uint8_t PciConfigSpace::read8(uint16_t offset) const {
    return offset < kPciConfigSize ? m_bytes[offset] : 0;
}
uint16_t PciConfigSpace::read16(uint16_t offset) const {
    return static_cast<uint16_t>(read8(offset) | (read8(offset + 1) << 8));
}
uint32_t PciConfigSpace::read32(uint16_t offset) const {
    return uint32_t{read16(offset)} | (uint32_t{read16(offset + 2)} << 16);
}
void PciConfigSpace::set8(uint16_t offset, uint8_t value) {
    if (offset < kPciConfigSize) m_bytes[offset] = value;
}
void PciConfigSpace::set16(uint16_t offset, uint16_t value) {
    set8(offset, static_cast<uint8_t>(value));
    set8(offset + 1, static_cast<uint8_t>(value >> 8));
}
void PciConfigSpace::set32(uint16_t offset, uint32_t value) {
    set16(offset, static_cast<uint16_t>(value));
    set16(offset + 2, static_cast<uint16_t>(value >> 16));
}
void PciConfigSpace::set_write_mask8(uint16_t offset, uint8_t mask) {
    if (offset < kPciConfigSize) m_write_mask[offset] = mask;
}
void PciConfigSpace::set_write_mask16(uint16_t offset, uint16_t mask) {
    set_write_mask8(offset, static_cast<uint8_t>(mask));
    set_write_mask8(offset + 1, static_cast<uint8_t>(mask >> 8));
}

Result<void> PciConfigSpace::restore(const State& state) {
    for (size_t i = 0; i < kPciConfigSize; ++i) {
        if ((state.bytes[i] ^ m_bytes[i]) & ~m_write_mask[i])
            return input_error("PCI config state: byte {:#04x} is {:#04x}, this device has {:#04x} there (device "
                               "{:04x}:{:04x}, the snapshot's {:04x}:{:04x})",
                               i, state.bytes[i], m_bytes[i], read16(pci_reg::kVendorId), read16(pci_reg::kDeviceId),
                               state.bytes[0] | state.bytes[1] << 8, state.bytes[2] | state.bytes[3] << 8);
    }
    m_bytes = state.bytes;
    return {};
}

}  // namespace rv
