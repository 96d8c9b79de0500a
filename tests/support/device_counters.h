// Looking up one named value in a device's --stats counters.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "devices/pci/pci_device.h"

namespace rv::test {

inline std::optional<uint64_t> counter(const DeviceCounters& counters, std::string_view name) {
    for (const auto& [n, v] : counters)
        if (n == name) return v;
    return std::nullopt;
}

}  // namespace rv::test
