// Address-space dispatch: a sorted map of non-overlapping ranges to devices.
// One Bus for port I/O and one for MMIO; the address types keep them apart.
#pragma once

#include <cstdint>
#include <map>
#include <shared_mutex>
#include <memory>
#include <span>
#include <string>

#include "base/error.h"

namespace rv {

// A device reachable on a bus. Offsets are relative to the base of the range
// the device was inserted at. Devices synchronise internally: vCPU threads may
// call them concurrently.
class BusDevice {
public:
    virtual ~BusDevice() = default;
    virtual std::string_view name() const = 0;
    virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

struct PioSpace {};
struct MmioSpace {};

template <typename Space>
struct BusAddress {
    uint64_t value{0};
    constexpr BusAddress() = default;
    constexpr explicit BusAddress(uint64_t v) : value(v) {}
    constexpr auto operator<=>(const BusAddress&) const = default;
};
using PioAddress = BusAddress<PioSpace>;
using MmioAddress = BusAddress<MmioSpace>;

template <typename Space>
class Bus {
public:
    using Address = BusAddress<Space>;

    // Claims [base, base + len) for device. Fails on empty or overflowing
    // ranges and on overlap with an existing range. insert/remove may run
    // while vCPUs dispatch (a guest moving a PCI BAR): a shared lock guards
    // the map, and dispatch holds it only shared.
    Result<void> insert(std::shared_ptr<BusDevice> device, Address base, uint64_t len);
    Result<void> remove(Address base);

    // Dispatches an access. An access must fall entirely inside one device's
    // range; an unclaimed read is zero-filled and an unclaimed write dropped.
    // Returns false if no device claimed the access.
    bool read(Address addr, std::span<uint8_t> data) const;
    bool write(Address addr, std::span<const uint8_t> data) const;

    size_t size() const {
        std::shared_lock lock(m_lock);
        return m_ranges.size();
    }

private:
    struct Range {
        uint64_t len;
        std::shared_ptr<BusDevice> device;
    };
    // Finds the device whose range holds [addr, addr + len); sets offset.
    const Range* resolve(uint64_t addr, uint64_t len, uint64_t& offset) const;

    mutable std::shared_mutex m_lock;
    std::map<uint64_t, Range> m_ranges;  // base -> range
};

using PioBus = Bus<PioSpace>;
using MmioBus = Bus<MmioSpace>;

extern template class Bus<PioSpace>;
extern template class Bus<MmioSpace>;

}  // namespace rv
