// Little-endian register accesses on a BusDevice, the way a guest's
// in/out or mov instructions of a given width reach it.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "bus/bus.h"

namespace rv::test {

template <typename T>
T read_le(BusDevice& device, uint64_t offset) {
    std::array<uint8_t, sizeof(T)> bytes{};
    device.read(offset, bytes);
    T value = 0;
    for (size_t i = 0; i < sizeof(T); ++i) value |= static_cast<T>(T{bytes[i]} << (8 * i));
    return value;
}

template <typename T>
void write_le(BusDevice& device, uint64_t offset, T value) {
    std::array<uint8_t, sizeof(T)> bytes{};
    for (size_t i = 0; i < sizeof(T); ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
    device.write(offset, bytes);
}

inline uint8_t read8(BusDevice& d, uint64_t offset) {
    return read_le<uint8_t>(d, offset);
}
inline uint16_t read16(BusDevice& d, uint64_t offset) {
    return read_le<uint16_t>(d, offset);
}
inline uint32_t read32(BusDevice& d, uint64_t offset) {
    return read_le<uint32_t>(d, offset);
}
inline void write8(BusDevice& d, uint64_t offset, uint8_t v) {
    write_le(d, offset, v);
}
inline void write16(BusDevice& d, uint64_t offset, uint16_t v) {
    write_le(d, offset, v);
}
inline void write32(BusDevice& d, uint64_t offset, uint32_t v) {
    write_le(d, offset, v);
}

}  // namespace rv::test
