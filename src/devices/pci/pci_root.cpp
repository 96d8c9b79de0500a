#include "devices/pci/pci_root.h"

#include <algorithm>
#include <mutex>

#include "base/log.h"
#include "devices/pci/config_space.h"

namespace rv {

namespace {

constexpr uint32_t kConfigEnable = 1u << 31;
constexpr uint16_t kBarRegsEnd = pci_reg::kBar0 + 4 * kPciBarCount;

// 00:00.0, a host bridge with the ids of QEMU's q35 (Intel 82G33 MCH), so
// guests see a familiar root.
class HostBridge final : public PciDevice {
  public:
    HostBridge()
        : m_config(PciHeader{.vendor_id = 0x8086,
                             .device_id = 0x29C0,
                             .class_code = 0x06,
                             .subclass = 0x00,
                             .subsystem_vendor_id = 0x1AF4,
                             .subsystem_id = 0x1100}) {}
    std::string_view name() const override { return "pci-host-bridge"; }
    void config_read(uint16_t offset, std::span<uint8_t> data) override {
        std::lock_guard lock(m_lock);
        m_config.read(offset, data);
    }
    void config_write(uint16_t offset, std::span<const uint8_t> data) override {
        std::lock_guard lock(m_lock);
        m_config.write(offset, data);
    }
    std::vector<PciBarInfo> bars() const override { return {}; }
    void bar_read(uint8_t, uint64_t, std::span<uint8_t> data) override {
        std::fill(data.begin(), data.end(), 0);
    }
    void bar_write(uint8_t, uint64_t, std::span<const uint8_t>) override {}

  private:
    std::mutex m_lock;
    PciConfigSpace m_config;
};

// A BAR's range on a bus, forwarding to the device.
class BarAdapter final : public BusDevice {
  public:
    BarAdapter(std::shared_ptr<PciDevice> device, uint8_t index)
        : m_device(std::move(device)), m_index(index) {}
    std::string_view name() const override { return m_device->name(); }
    void read(uint64_t offset, std::span<uint8_t> data) override {
        m_device->bar_read(m_index, offset, data);
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        m_device->bar_write(m_index, offset, data);
    }

  private:
    std::shared_ptr<PciDevice> m_device;
    uint8_t m_index;
};

class EcamAdapter final : public BusDevice {
  public:
    explicit EcamAdapter(std::shared_ptr<PciRoot> root) : m_root(std::move(root)) {}
    std::string_view name() const override { return "pci-ecam"; }
    void read(uint64_t offset, std::span<uint8_t> data) override {
        if (!valid(offset, data.size())) {
            std::fill(data.begin(), data.end(), 0xFF);
            return;
        }
        m_root->config_read(slot(offset), function(offset), reg(offset), data);
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        if (valid(offset, data.size()))
            m_root->config_write(slot(offset), function(offset), reg(offset), data);
    }

  private:
    // ECAM accesses are 1, 2 or 4 bytes, naturally aligned.
    static bool valid(uint64_t offset, size_t len) {
        return offset < kPciEcamBusSize && (len == 1 || len == 2 || len == 4) && offset % len == 0;
    }
    static uint8_t slot(uint64_t offset) { return (offset >> 15) & 0x1F; }
    static uint8_t function(uint64_t offset) { return (offset >> 12) & 0x7; }
    static uint16_t reg(uint64_t offset) { return offset & 0xFFF; }
    std::shared_ptr<PciRoot> m_root;
};

}  // namespace

// Several slots share each IRQ; the line is high while any of them asserts.
class PciRoot::SharedIrq {
  public:
    explicit SharedIrq(std::shared_ptr<IrqLine> line) : m_line(std::move(line)) {}
    void set(uint8_t slot, bool high) {
        std::lock_guard lock(m_lock);
        bool before = m_asserted != 0;
        if (high)
            m_asserted |= 1u << slot;
        else
            m_asserted &= ~(1u << slot);
        bool after = m_asserted != 0;
        if (before != after) m_line->set_level(after);
    }

  private:
    std::mutex m_lock;
    std::shared_ptr<IrqLine> m_line;
    uint32_t m_asserted{0};
};

namespace {
class SlotIrqLine final : public IrqLine {
  public:
    using Setter = std::function<void(bool)>;
    explicit SlotIrqLine(Setter setter) : m_setter(std::move(setter)) {}
    void set_level(bool high) override { m_setter(high); }

  private:
    Setter m_setter;
};
}  // namespace

std::shared_ptr<PciRoot> PciRoot::create(MmioBus& mmio, PioBus& pio, IrqLineFactory irq_factory) {
    return std::make_shared<PciRoot>(mmio, pio, std::move(irq_factory));
}

PciRoot::PciRoot(MmioBus& mmio, PioBus& pio, IrqLineFactory irq_factory)
    : m_mmio(mmio), m_pio(pio), m_irq_factory(std::move(irq_factory)) {
    m_slots[0].device = std::make_shared<HostBridge>();
}

Result<uint8_t> PciRoot::add_device(std::shared_ptr<PciDevice> device) {
    if (!device) return make_error("pci: null device");
    std::optional<uint8_t> placed;
    {
        std::lock_guard lock(m_lock);
        for (uint8_t slot = 1; slot < kPciMaxSlots && !placed; ++slot) {
            if (m_slots[slot].device) continue;
            m_slots[slot].device = device;
            for (const auto& bar : device->bars()) m_slots[slot].bars.push_back(Mapping{bar, {}});
            uint8_t pin = 0;
            device->config_read(pci_reg::kInterruptPin, std::span(&pin, 1));
            if (pin != 0) {
                uint8_t line = intx_irq(slot, pin);
                device->config_write(pci_reg::kInterruptLine, std::span(&line, 1));
            }
            placed = slot;
        }
    }
    if (!placed) return make_error("pci: no free slot for {}", device->name());
    // Outside the lock: intx_line takes it, and the device takes its own.
    device->assign_intx(intx_line(*placed));
    return *placed;
}

std::vector<std::pair<uint8_t, std::shared_ptr<PciDevice>>> PciRoot::devices() const {
    std::lock_guard lock(m_lock);
    std::vector<std::pair<uint8_t, std::shared_ptr<PciDevice>>> out;
    for (size_t slot = 0; slot < m_slots.size(); ++slot)
        if (m_slots[slot].device)
            out.emplace_back(static_cast<uint8_t>(slot), m_slots[slot].device);
    return out;
}

std::shared_ptr<IrqLine> PciRoot::intx_line(uint8_t slot) {
    std::lock_guard lock(m_lock);
    if (slot == 0 || slot >= kPciMaxSlots || !m_slots[slot].device || !m_irq_factory)
        return nullptr;
    uint8_t pin = 0;
    m_slots[slot].device->config_read(pci_reg::kInterruptPin, std::span(&pin, 1));
    if (pin == 0) return nullptr;
    unsigned irq = intx_irq(slot, pin);
    auto& shared = m_irqs[irq];
    if (!shared) {
        auto line = m_irq_factory(irq);
        if (!line) {
            m_irqs.erase(irq);
            return nullptr;
        }
        shared = std::make_shared<SharedIrq>(std::move(line));
    }
    return std::make_shared<SlotIrqLine>(
        [shared = shared, slot](bool high) { shared->set(slot, high); });
}

Result<void> PciRoot::allocate_bars(const PciWindows& windows) {
    std::lock_guard lock(m_lock);
    struct Want {
        uint8_t slot;
        PciBarInfo bar;
    };
    std::vector<Want> wants;
    for (uint8_t slot = 1; slot < kPciMaxSlots; ++slot)
        for (const auto& m : m_slots[slot].bars) wants.push_back({slot, m.info});
    // Largest first packs naturally aligned BARs without holes.
    std::stable_sort(wants.begin(), wants.end(),
                     [](const Want& a, const Want& b) { return a.bar.size > b.bar.size; });
    bool have64 = windows.mmio64_end > windows.mmio64_start;
    uint64_t next_io = windows.io_start, next32 = windows.mmio32_start,
             next64 = windows.mmio64_start;
    for (const auto& w : wants) {
        uint64_t* cursor = &next32;
        uint64_t end = windows.mmio32_end;
        if (w.bar.io) {
            cursor = &next_io;
            end = windows.io_end;
        } else if (w.bar.is_64bit && have64) {
            cursor = &next64;
            end = windows.mmio64_end;
        }
        uint64_t addr = (*cursor + w.bar.size - 1) & ~(w.bar.size - 1);
        if (addr < *cursor || addr > end || w.bar.size > end - addr)
            return make_error("pci: no room for BAR {} ({:#x} bytes) of {}", w.bar.index,
                              w.bar.size, m_slots[w.slot].device->name());
        *cursor = addr + w.bar.size;

        PciDevice& device = *m_slots[w.slot].device;
        uint16_t reg = pci_reg::kBar0 + 4 * w.bar.index;
        std::array<uint8_t, 4> bytes{};
        store_le(bytes, addr);
        device.config_write(reg, bytes);
        if (w.bar.is_64bit) {
            store_le(bytes, addr >> 32);
            device.config_write(reg + 4, bytes);
        }
        RV_TRY_VOID(map_locked(w.slot, w.bar, addr));
    }
    // Turn decoding on as firmware would; the guest may toggle it later.
    for (uint8_t slot = 1; slot < kPciMaxSlots; ++slot) {
        const auto& s = m_slots[slot];
        if (!s.device || s.bars.empty()) continue;
        std::array<uint8_t, 2> cmd{};
        s.device->config_read(pci_reg::kCommand, cmd);
        uint16_t command = static_cast<uint16_t>(load_le(cmd));
        for (const auto& m : s.bars) command |= m.info.io ? kPciCommandIo : kPciCommandMemory;
        store_le(cmd, command);
        s.device->config_write(pci_reg::kCommand, cmd);
    }
    return {};
}

Result<void> PciRoot::map_locked(uint8_t slot, const PciBarInfo& bar, uint64_t address) {
    Slot& s = m_slots[slot];
    auto it = std::find_if(s.bars.begin(), s.bars.end(),
                           [&](const Mapping& m) { return m.info.index == bar.index; });
    if (it == s.bars.end()) return make_error("pci: {} has no BAR {}", s.device->name(), bar.index);
    if (it->address) unmap_locked(*s.device, *it);
    auto adapter = std::make_shared<BarAdapter>(s.device, bar.index);
    if (bar.io)
        RV_TRY_VOID(m_pio.insert(adapter, PioAddress{address}, bar.size));
    else
        RV_TRY_VOID(m_mmio.insert(adapter, MmioAddress{address}, bar.size));
    it->address = address;
    observe_locked(*s.device, bar, address, true);
    s.device->bar_moved(bar.index, address);
    return {};
}

void PciRoot::unmap_locked(const PciDevice& device, const Mapping& mapping) {
    if (!mapping.address) return;
    observe_locked(device, mapping.info, *mapping.address, false);
    Result<void> r = mapping.info.io ? m_pio.remove(PioAddress{*mapping.address})
                                     : m_mmio.remove(MmioAddress{*mapping.address});
    if (!r) log::warn("pci: unmapping BAR {}: {}", mapping.info.index, r.error().message());
}

void PciRoot::set_bar_observer(BarObserver observer) {
    std::lock_guard lock(m_lock);
    m_bar_observer = std::move(observer);
}

void PciRoot::observe_locked(const PciDevice& device, const PciBarInfo& bar, uint64_t address,
                             bool mapped) {
    if (m_bar_observer) m_bar_observer(device, bar, address, mapped);
}

std::optional<uint64_t> PciRoot::read_bar_locked(PciDevice& device, const PciBarInfo& bar) {
    uint16_t reg = pci_reg::kBar0 + 4 * bar.index;
    std::array<uint8_t, 4> lo{}, hi{};
    device.config_read(reg, lo);
    if (bar.is_64bit) device.config_read(reg + 4, hi);
    if (pci_bar_is_sizing(bar, load_le(lo), load_le(hi))) return std::nullopt;
    return pci_bar_address(bar, load_le(lo), load_le(hi));
}

void PciRoot::follow_bar_locked(uint8_t slot, Mapping& mapping) {
    PciDevice& device = *m_slots[slot].device;
    auto wanted = read_bar_locked(device, mapping.info);
    if (!wanted || wanted == mapping.address) return;
    const PciBarInfo& bar = mapping.info;
    uint64_t end;
    bool fits = !__builtin_add_overflow(*wanted, bar.size, &end) && (!bar.io || end <= 0x1'0000);
    auto old = mapping.address;
    if (fits) {
        if (old) unmap_locked(device, mapping);
        mapping.address.reset();
        if (map_locked(slot, bar, *wanted)) {
            log::debug("pci: {} BAR {} moved to {:#x}", device.name(), bar.index, *wanted);
            return;
        }
    }
    // Overlap or out of range: keep decoding at the old address.
    log::warn_limited(m_bar_refused_log, "pci: {} BAR {}: cannot move to {:#x}, keeping {:#x}",
                      device.name(), bar.index, *wanted, old.value_or(0));
    if (old && !mapping.address) {
        auto adapter = std::make_shared<BarAdapter>(m_slots[slot].device, bar.index);
        Result<void> r = bar.io ? m_pio.insert(adapter, PioAddress{*old}, bar.size)
                                : m_mmio.insert(adapter, MmioAddress{*old}, bar.size);
        if (r) {
            mapping.address = old;
            observe_locked(device, bar, *old, true);
        }
    }
}

std::optional<uint64_t> PciRoot::bar_address(uint8_t slot, uint8_t index) const {
    std::lock_guard lock(m_lock);
    if (slot >= kPciMaxSlots) return std::nullopt;
    for (const auto& m : m_slots[slot].bars)
        if (m.info.index == index) return m.address;
    return std::nullopt;
}

void PciRoot::config_access_locked(uint8_t slot, uint8_t function, uint16_t offset,
                                   std::span<uint8_t> read_data,
                                   std::span<const uint8_t> write_data) {
    bool present = slot < kPciMaxSlots && function == 0 && m_slots[slot].device;
    if (!present) {
        // Absent functions read all-ones (a master abort), writes vanish.
        std::fill(read_data.begin(), read_data.end(), 0xFF);
        return;
    }
    Slot& s = m_slots[slot];
    if (!write_data.empty()) {
        s.device->config_write(offset, write_data);
        uint32_t end = offset + static_cast<uint32_t>(write_data.size());
        if (end <= pci_reg::kBar0 || offset >= kBarRegsEnd) return;
        for (auto& m : s.bars) {
            uint16_t reg = pci_reg::kBar0 + 4 * m.info.index;
            uint16_t reg_end = reg + (m.info.is_64bit ? 8 : 4);
            if (offset < reg_end && end > reg) follow_bar_locked(slot, m);
        }
    } else {
        s.device->config_read(offset, read_data);
    }
}

void PciRoot::config_read(uint8_t slot, uint8_t function, uint16_t offset,
                          std::span<uint8_t> data) {
    std::lock_guard lock(m_lock);
    config_access_locked(slot, function, offset, data, {});
}

void PciRoot::config_write(uint8_t slot, uint8_t function, uint16_t offset,
                           std::span<const uint8_t> data) {
    if (data.empty()) return;
    std::lock_guard lock(m_lock);
    config_access_locked(slot, function, offset, {}, data);
}

void PciRoot::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_lock);
    if (offset == 0 && data.size() == 4) {
        store_le(data, m_config_address);
        return;
    }
    if (offset < 4 || offset + data.size() > kPciConfigPortCount || data.empty()) {
        std::fill(data.begin(), data.end(), 0xFF);
        return;
    }
    uint32_t a = m_config_address;
    if (!(a & kConfigEnable) || ((a >> 16) & 0xFF) != 0) {
        std::fill(data.begin(), data.end(), 0xFF);
        return;
    }
    config_access_locked((a >> 11) & 0x1F, (a >> 8) & 0x7,
                         static_cast<uint16_t>((a & 0xFC) + (offset - 4)), data, {});
}

void PciRoot::write(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_lock);
    if (offset == 0 && data.size() == 4) {
        // Bits 30:24 are reserved; bits 1:0 select type 0/1 cycles, unused here.
        m_config_address = load_le(data) & 0x80FF'FFFC;
        return;
    }
    if (offset < 4 || offset + data.size() > kPciConfigPortCount || data.empty()) return;
    uint32_t a = m_config_address;
    if (!(a & kConfigEnable) || ((a >> 16) & 0xFF) != 0) return;
    config_access_locked((a >> 11) & 0x1F, (a >> 8) & 0x7,
                         static_cast<uint16_t>((a & 0xFC) + (offset - 4)), {}, data);
}

std::shared_ptr<BusDevice> PciRoot::ecam() {
    return std::make_shared<EcamAdapter>(shared_from_this());
}

PciRoot::State PciRoot::save() const {
    std::lock_guard lock(m_lock);
    return State{m_config_address};
}

Result<void> PciRoot::restore(const State& state) {
    std::lock_guard lock(m_lock);
    m_config_address = state.config_address;
    for (uint8_t slot = 0; slot < kPciMaxSlots; ++slot) {
        if (!m_slots[slot].device) continue;
        for (Mapping& m : m_slots[slot].bars) {
            follow_bar_locked(slot, m);
            auto wanted = read_bar_locked(*m_slots[slot].device, m.info);
            if (wanted && wanted != m.address)
                return input_error("pci: {} BAR {} cannot be mapped at {:#x}",
                                   m_slots[slot].device->name(), m.info.index, *wanted);
        }
    }
    return {};
}

}  // namespace rv
