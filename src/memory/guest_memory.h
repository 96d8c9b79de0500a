// Guest physical memory: host mappings of guest RAM regions with
// bounds-checked, overflow-safe accessors. Guest memory is hostile input:
// callers copy bytes in and out, they never hold references into it as objects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "base/error.h"

namespace rv {

struct GuestAddress {
    uint64_t value{0};
    constexpr GuestAddress() = default;
    constexpr explicit GuestAddress(uint64_t v) : value(v) {}
    // Overflow-checked offset; nullopt-like behaviour through the bool.
    constexpr bool checked_add(uint64_t offset, GuestAddress& out) const {
        return !__builtin_add_overflow(value, offset, &out.value);
    }
    constexpr auto operator<=>(const GuestAddress&) const = default;
};

struct GuestRegion {
    GuestAddress start;
    uint64_t size{0};
    uint8_t* host{nullptr};  // host mapping of [start, start + size)
    uint64_t end() const { return start.value + size; }  // exclusive; never overflows (checked at creation)
};

class GuestMemory {
public:
    struct RegionSpec {
        GuestAddress start;
        uint64_t size;
    };

    // Maps anonymous memory for each region. Regions must be non-empty,
    // page-aligned, sorted and non-overlapping.
    static Result<GuestMemory> create(std::span<const RegionSpec> specs);

    GuestMemory() = default;
    GuestMemory(GuestMemory&& other) noexcept;
    GuestMemory& operator=(GuestMemory&& other) noexcept;
    GuestMemory(const GuestMemory&) = delete;
    GuestMemory& operator=(const GuestMemory&) = delete;
    ~GuestMemory();

    const std::vector<GuestRegion>& regions() const { return m_regions; }
    uint64_t total_size() const;

    // True if [addr, addr + len) lies entirely in guest RAM (may span regions
    // only where they are contiguous).
    bool check_range(GuestAddress addr, uint64_t len) const;

    // Copy between guest memory and host buffers. Accesses may span adjacent
    // regions; any byte outside RAM fails the whole access before copying.
    Result<void> read(GuestAddress addr, std::span<uint8_t> out) const;
    Result<void> write(GuestAddress addr, std::span<const uint8_t> in) const;
    Result<void> fill(GuestAddress addr, uint8_t value, uint64_t len) const;

    template <typename T>
    Result<T> read_obj(GuestAddress addr) const {
        static_assert(std::is_trivially_copyable_v<T>);
        T value;
        // SAFETY: T is trivially copyable, so any byte pattern copied in is a valid T
        // representation for the plain wire structs this is used with.
        RV_TRY_VOID(read(addr, std::span(reinterpret_cast<uint8_t*>(&value), sizeof(T))));
        return value;
    }
    template <typename T>
    Result<void> write_obj(GuestAddress addr, const T& value) const {
        static_assert(std::is_trivially_copyable_v<T>);
        return write(addr, std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
    }

    // One 16-bit field the guest updates while we run (a virtqueue index or
    // event field), read or written as a single access. read_obj's memcpy may
    // split a 2-byte copy into a byte load and a word load (glibc does), so a
    // driver moving an index from 0x12ff to 0x1300 could be read as 0x13ff.
    // The address must be 2-byte aligned. Relaxed: callers add the fences.
    Result<uint16_t> load_u16(GuestAddress addr) const;
    Result<void> store_u16(GuestAddress addr, uint16_t value) const;

    // Host pointer to [addr, addr + len), which must lie within one region.
    // For bulk loaders and I/O backends; the caller must still treat the bytes
    // as hostile (the guest may change them concurrently).
    Result<uint8_t*> host_range(GuestAddress addr, uint64_t len) const;

private:
    explicit GuestMemory(std::vector<GuestRegion> regions) : m_regions(std::move(regions)) {}
    const GuestRegion* find_region(GuestAddress addr) const;
    void unmap_all();

    std::vector<GuestRegion> m_regions;
};

}  // namespace rv
