#include "bus/bus.h"

#include <algorithm>
#include <mutex>

namespace rv {

template <typename Space>
Result<void> Bus<Space>::insert(std::shared_ptr<BusDevice> device, Address base, uint64_t len) {
    if (!device) return make_error("bus: null device");
    uint64_t end;
    if (len == 0 || __builtin_add_overflow(base.value, len - 1, &end))
        return make_error("bus: bad range {:#x}+{:#x} for {}", base.value, len, device->name());
    std::unique_lock lock(m_lock);
    // The next range must start after our end; the previous must end before our base.
    auto next = m_ranges.lower_bound(base.value);
    if (next != m_ranges.end() && next->first <= end)
        return make_error("bus: {} at {:#x}+{:#x} overlaps {} at {:#x}", device->name(), base.value,
                          len, next->second.device->name(), next->first);
    if (next != m_ranges.begin()) {
        auto prev = std::prev(next);
        if (prev->first + (prev->second.len - 1) >= base.value)
            return make_error("bus: {} at {:#x}+{:#x} overlaps {} at {:#x}", device->name(),
                              base.value, len, prev->second.device->name(), prev->first);
    }
    m_ranges.emplace(base.value, Range{len, std::move(device)});
    return {};
}

template <typename Space>
Result<void> Bus<Space>::remove(Address base) {
    std::unique_lock lock(m_lock);
    if (m_ranges.erase(base.value) == 0) return make_error("bus: no device at {:#x}", base.value);
    return {};
}

template <typename Space>
auto Bus<Space>::resolve(uint64_t addr, uint64_t len, uint64_t& offset) const -> const Range* {
    auto it = m_ranges.upper_bound(addr);
    if (it == m_ranges.begin()) return nullptr;
    --it;
    offset = addr - it->first;
    // [offset, offset + len) must fit in the range; written to avoid overflow.
    if (offset >= it->second.len || len > it->second.len - offset) return nullptr;
    return &it->second;
}

template <typename Space>
bool Bus<Space>::read(Address addr, std::span<uint8_t> data) const {
    uint64_t offset = 0;
    std::shared_ptr<BusDevice> device;
    {
        std::shared_lock lock(m_lock);
        if (const Range* r = resolve(addr.value, data.size(), offset)) device = r->device;
    }
    if (!device) {
        std::fill(data.begin(), data.end(), 0);
        return false;
    }
    // Called without the lock, so a device may move its own ranges.
    device->read(offset, data);
    return true;
}

template <typename Space>
bool Bus<Space>::write(Address addr, std::span<const uint8_t> data) const {
    uint64_t offset = 0;
    std::shared_ptr<BusDevice> device;
    {
        std::shared_lock lock(m_lock);
        if (const Range* r = resolve(addr.value, data.size(), offset)) device = r->device;
    }
    if (!device) return false;
    device->write(offset, data);
    return true;
}

template class Bus<PioSpace>;
template class Bus<MmioSpace>;

}  // namespace rv
