// A function on the PCI bus: its configuration space and its BARs. Kept apart
// from BusDevice: the root complex routes config cycles here, and BAR
// accesses arrive through bus ranges the root maps at the BAR addresses.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "devices/interrupt.h"

namespace rv {

struct PciBarInfo {
    uint8_t index{0};        // 0..5; a 64-bit BAR uses index and index + 1
    uint64_t size{0};        // power of two, >= 16 (MMIO) or >= 4 (I/O)
    bool io{false};          // I/O space BAR
    bool is_64bit{false};
    bool prefetchable{false};
};

// A register range inside a BAR (offsets relative to the BAR's base).
struct PciBarRange {
    uint64_t offset{0};
    uint64_t size{0};
};

// A doorbell inside a BAR that is better served without a trip to user space:
// a guest write of any width and value at `offset` signals the eventfd `fd`
// (a KVM ioeventfd, registered by the VMM wherever the BAR is mapped). The
// device owns the fd and serves it on its event loop.
struct PciIoEvent {
    uint64_t offset{0};
    int fd{-1};
};

using DeviceCounters = std::vector<std::pair<std::string, uint64_t>>;

class PciDevice {
public:
    virtual ~PciDevice() = default;
    virtual std::string_view name() const = 0;

    // Configuration space, 256 bytes (4096 through ECAM). Accesses are 1, 2
    // or 4 bytes, naturally aligned; the root complex guarantees both.
    virtual void config_read(uint16_t offset, std::span<uint8_t> data) = 0;
    virtual void config_write(uint16_t offset, std::span<const uint8_t> data) = 0;

    virtual std::vector<PciBarInfo> bars() const = 0;
    // The VMM placed BAR `index` at `address` (before boot, or because the
    // guest reprogrammed it). Devices that register ioeventfds re-register.
    virtual void bar_moved(uint8_t index, uint64_t address) { (void)index, (void)address; }
    // Accesses inside BAR `index`; offset is relative to the BAR's base.
    virtual void bar_read(uint8_t index, uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void bar_write(uint8_t index, uint64_t offset, std::span<const uint8_t> data) = 0;

    // The doorbells in BAR `index` (see PciIoEvent); fixed for the device's life.
    virtual std::vector<PciIoEvent> ioevents(uint8_t index) const {
        (void)index;
        return {};
    }

    // The device's INTx line, handed over by the root complex once the device
    // has a slot (nullptr when it has no interrupt pin).
    virtual void assign_intx(std::shared_ptr<IrqLine> line) { (void)line; }

    // Registers in MMIO BAR `index` whose writes may be posted: the VMM may
    // buffer them without stopping the guest (KVM coalesced MMIO) and deliver
    // them later, in order, before it serves the next exit of any vCPU. Only
    // for registers a driver writes often whose side effect may wait for the
    // driver's next register access; a device that must see them sooner asks
    // through a flush hook of its own.
    virtual std::vector<PciBarRange> posted_write_ranges(uint8_t index) const {
        (void)index;
        return {};
    }

    // Named counters and state for `ringvisor run --stats` (packets,
    // interrupts, ring indexes, ...): what a stuck or slow device was doing.
    // Safe to call from any thread while the VM runs.
    virtual DeviceCounters counters() const { return {}; }
};

}  // namespace rv
