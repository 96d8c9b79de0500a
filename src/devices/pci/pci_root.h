// PCI bus 0: a host bridge at 00:00.0 and single-function devices at slots
// 1..31. The guest reaches configuration space through configuration
// mechanism #1 (CONFIG_ADDRESS 0xCF8, CONFIG_DATA 0xCFC..0xCFF; PciRoot is
// itself the BusDevice for those 8 ports) or ECAM (ecam(), 1 MiB for bus 0).
// The root places BARs, maps them on the buses, follows the guest when it
// moves them, and hands out INTx lines (shared lines are wired-OR).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "base/error.h"
#include "base/log.h"
#include "bus/bus.h"
#include "devices/interrupt.h"
#include "devices/pci/pci_device.h"
#include "snapshot/state_codec.h"

namespace rv {

inline constexpr uint64_t kPciConfigAddressPort = 0xCF8;
inline constexpr uint64_t kPciConfigPortCount = 8;
inline constexpr uint64_t kPciEcamBusSize = 1ull << 20;
inline constexpr uint8_t kPciMaxSlots = 32;

// Address windows for BAR placement, [start, end).
struct PciWindows {
    uint64_t mmio32_start{0xC000'0000};
    uint64_t mmio32_end{0xFEC0'0000};  // IOAPIC at 0xFEC00000, LAPIC at 0xFEE00000
    // Above guest RAM; 64-bit BARs go here. Empty: they share the 32-bit window.
    uint64_t mmio64_start{0};
    uint64_t mmio64_end{0};
    uint64_t io_start{0xC000};
    uint64_t io_end{0x1'0000};
};

class PciRoot final : public BusDevice, public std::enable_shared_from_this<PciRoot> {
  public:
    using IrqLineFactory = std::function<std::shared_ptr<IrqLine>(unsigned irq)>;
    // INTx# lines go to I/O APIC inputs 16..23, above the ISA IRQs, rotated
    // by slot and pin as a PCI-to-PCI bridge swizzles them; the DSDT's _PRT
    // tells the guest the same mapping (intx_irq for every slot and pin).
    static constexpr unsigned kIntxFirstGsi = 16;
    static constexpr unsigned kIntxGsiCount = 8;

    static std::shared_ptr<PciRoot> create(MmioBus& mmio, PioBus& pio, IrqLineFactory irq_factory);

    // Puts `device` in the lowest free slot, writes its Interrupt Line
    // register and hands it its INTx line (PciDevice::assign_intx); returns
    // the slot.
    Result<uint8_t> add_device(std::shared_ptr<PciDevice> device);
    // The INTx line of the device in `slot` (nullptr: no device, no pin or
    // no factory). Lines of slots sharing an IRQ are ORed together.
    std::shared_ptr<IrqLine> intx_line(uint8_t slot);
    // pin: 1 = INTA# .. 4 = INTD#, as in the Interrupt Pin register.
    static uint8_t intx_irq(uint8_t slot, uint8_t pin = 1) {
        return static_cast<uint8_t>(kIntxFirstGsi + (slot + pin - 1u) % kIntxGsiCount);
    }

    // Places every BAR naturally aligned in its window, programs the BAR
    // registers and the command register's decode bits, maps the BARs on the
    // buses and tells each device (bar_moved). Call once, before boot.
    Result<void> allocate_bars(const PciWindows& windows);
    // Where BAR `index` of `slot` is mapped now.
    std::optional<uint64_t> bar_address(uint8_t slot, uint8_t index) const;

    // Told whenever a BAR is mapped at an address (mapped = true) or taken
    // off it, under the root's lock: the VMM follows BARs with KVM state
    // (the device's ioeventfds and coalesced MMIO zones). Set before allocate_bars.
    using BarObserver =
        std::function<void(const PciDevice&, const PciBarInfo&, uint64_t address, bool mapped)>;
    void set_bar_observer(BarObserver observer);

    // Every device with its slot, in slot order.
    std::vector<std::pair<uint8_t, std::shared_ptr<PciDevice>>> devices() const;

    // Configuration access to 00:slot.fn, as the guest sees it (tests, VMM).
    void config_read(uint8_t slot, uint8_t function, uint16_t offset, std::span<uint8_t> data);
    void config_write(uint8_t slot, uint8_t function, uint16_t offset,
                      std::span<const uint8_t> data);

    // Configuration mechanism #1, offsets relative to 0xCF8.
    std::string_view name() const override { return "pci-root"; }
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // The CONFIG_ADDRESS latch; the devices' config spaces are theirs.
    struct State {
        static constexpr uint32_t kVersion = 1;
        uint32_t config_address{0};
        void encode(snapshot::Writer& w) const { w.u32(config_address); }
        static State decode(snapshot::Reader& r) { return State{r.u32()}; }
        bool operator==(const State&) const = default;
    };
    State save() const;
    // After every device's config space is restored: sets the latch and
    // maps each BAR where the restored BAR registers put it (the guest may
    // have moved BARs from where allocate_bars placed them). A BAR that
    // cannot be mapped there is an InvalidInput error.
    Result<void> restore(const State& state);

    // ECAM for bus 0: insert on the MMIO bus with length kPciEcamBusSize
    // (and describe it to the guest in an ACPI MCFG table).
    std::shared_ptr<BusDevice> ecam();

    PciRoot(MmioBus& mmio, PioBus& pio, IrqLineFactory irq_factory);  // use create()

  private:
    struct Mapping {
        PciBarInfo info;
        std::optional<uint64_t> address;  // where it is on the bus
    };
    struct Slot {
        std::shared_ptr<PciDevice> device;
        std::vector<Mapping> bars;
    };
    class SharedIrq;

    void config_access_locked(uint8_t slot, uint8_t function, uint16_t offset,
                              std::span<uint8_t> read_data, std::span<const uint8_t> write_data);
    // After a guest write to a BAR register: remap if the address changed.
    void follow_bar_locked(uint8_t slot, Mapping& mapping);
    std::optional<uint64_t> read_bar_locked(PciDevice& device, const PciBarInfo& bar);
    Result<void> map_locked(uint8_t slot, const PciBarInfo& bar, uint64_t address);
    void unmap_locked(const PciDevice& device, const Mapping& mapping);
    void observe_locked(const PciDevice& device, const PciBarInfo& bar, uint64_t address,
                        bool mapped);

    MmioBus& m_mmio;
    PioBus& m_pio;
    IrqLineFactory m_irq_factory;
    mutable std::mutex m_lock;
    BarObserver m_bar_observer;
    uint32_t m_config_address{0};
    std::array<Slot, kPciMaxSlots> m_slots;
    std::map<unsigned, std::shared_ptr<SharedIrq>> m_irqs;
    // A guest can rewrite a refused BAR address on every config exit; the
    // refusal is logged under m_lock, so it is rate-limited.
    log::RateLimit m_bar_refused_log;
};

}  // namespace rv
